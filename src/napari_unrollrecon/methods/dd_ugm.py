"""DD-UGM: dual-domain unsupervised generative models for dynamic MRI — k-space and image VE-SDE
score models, predictor-corrector sampling, block-Hankel low rank across frames
(Cao, Liu et al., "Dual-domain unified generative models", seed 003; ../shared/docs/methods.md).

Paper → code, per iteration i over the σ ladder σ_1 > … > σ_N (models: dd_ugm_models)::

    k-space predictor   reverse diffusion on w·F x (ramp-weighted k-space), predictor noise
                        dropped; un-weight, DC kept from the iterate                 _k_predict
    data consistency    k = M y + (1 − M) F x, per frame                                 dc
    k-space corrector   Langevin, SNR rule (snr 0.075), C chains averaged             _corrector
    data consistency
    low rank            block Hankel of all 6×6 k-space windows of all frames, keep the top
                        ⌊1.5·36⌋ singular values, average back (Gram eigendecomposition,
                        priors.lowrank)                                            hankel_project
    data consistency
    image branch        the same predictor / corrector with the image model, from the same start
    fusion              x = f·x_k + (1 − f)·x_image, f = 0.75; data consistency; both branches
                        restart from x
    TV step (ours)      x = prox_λTV(x) over space and frames, then data consistency — not in
                        the paper; the fast schedule's λ 0.001, the paper schedule's 0       tv_step

Schedules: ``paper`` (1000 iterations from σ_max, random start, C = 3) and ``fast`` (our default,
chosen on validation-side series, docs/methods/dd-ugm.md): a warm start from the L+S
reconstruction (its 50 iterations stream first), then 40 iterations from σ 0.015 with a gentle
corrector (SNR 0.0075) and the TV step. The Hankel rank follows the mask family
(:data:`AUTO_RANK`). Frames are independent samples for the networks (both were trained on single
frames); only the low-rank and TV steps couple them. ``networks=False`` keeps the low-rank and TV
steps and data consistency alone: the ablation that shows what the score models add.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from napari_unrollrecon.methods import dd_ugm_models as M
from napari_unrollrecon.methods import lplus_s
from napari_unrollrecon.methods.base import (
    STOCHASTIC_PARAMS,
    LiveParams,
    MethodSpec,
    Param,
    UpdateMaker,
    noise_generator,
)
from napari_unrollrecon.physics import kweight
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.physics.masks import is_line_mask
from napari_unrollrecon.priors.channels import as_complex, to_channels
from napari_unrollrecon.priors.lowrank import hankel_project
from napari_unrollrecon.priors.tv import tv_prox
from napari_unrollrecon.samplers import steps as S
from napari_unrollrecon.samplers.sde import VESDE, noise

NAME = "dd-ugm"
TRAININGS = M.TRAININGS  # `python -m training train dd-ugm-k | dd-ugm-x`

SCHEDULES = {
    "paper": {"iterations": 1000, "chains": 3, "sigma_start": 0.0, "snr": 0.075, "init": "random", "tv": 0.0},
    # chosen on validation-side series (heart p32 z4 at 192² with R10 + ACS20 and radial 15 %, and
    # at 110² × 10 frames with a synthetic phase; docs/methods/dd-ugm.md): 50 L+S iterations (they
    # stream first), no fresh noise on them, 40 predictor-corrector iterations from σ 0.015 with a
    # 10× smaller corrector SNR, each followed by a spatio-temporal TV step of λ 0.001
    "fast": {"iterations": 40, "chains": 1, "sigma_start": 0.015, "snr": 0.0075, "init": "lplus-s",
             "renoise": False, "warm_iterations": 50, "tv": 0.001},
}
#: inner primal-dual iterations of the TV step per sampler iteration (its dual is kept between them)
TV_ITERATIONS = 20
#: Hankel rank when the ``rank`` parameter is 0: the paper's ⌊1.5·36⌋ for Cartesian line masks,
#: more for radial / random masks, whose series drift away from the truth under rank 54
#: (validation series: radial 15 % falls from 34.6 to 33.0 dB in 30 low-rank steps at rank 54,
#: stays at 35.4-35.5 at rank 250; docs/methods/dd-ugm.md)
AUTO_RANK = {"lines": 54, "other": 250}


def auto_rank(mask) -> int:
    return AUTO_RANK["lines" if is_line_mask(mask.cpu().numpy()) else "other"]


# --------------------------------------------------------------------------- pieces
def padded(model):
    """The score network on any grid: zero-pad the channels to the network's multiple, crop back."""
    m = getattr(model, "multiple", 1)

    def score(x, sigma):
        h, w = x.shape[-2:]
        ph, pw = (-h) % m, (-w) % m
        if not ph and not pw:
            return model(x, sigma)
        xp = F.pad(x, (pw // 2, pw - pw // 2, ph // 2, ph - ph // 2))
        return model(xp, sigma)[..., ph // 2: ph // 2 + h, pw // 2: pw // 2 + w]

    return score


class Domain:
    """Moves image-space iterates (B, H, W) complex in and out of a model's channels."""

    def __init__(self, name: str, shape, device):
        self.name = name
        self.w = kweight.ramp(shape, device=device) if name == "kspace" else None

    def encode(self, x):
        return to_channels(x if self.w is None else kweight.weight(fft2c(x), self.w))

    def decode(self, u, like):
        z = as_complex(u)
        if self.w is None:
            return z
        return ifft2c(kweight.unweight(z, self.w, fft2c(like)))


def _corrector(u, sigma, score, gen, snr, chains, last):
    """Langevin (SNR rule) on ``chains`` copies with their own noise, averaged."""
    rep = u.repeat(chains, 1, 1, 1) if chains > 1 else u
    x, x_mean = S.langevin(rep, sigma, score, gen, snr=snr)
    out = x_mean if last else x
    return out.view(chains, *u.shape).mean(0) if chains > 1 else out


def branch(x, domain: Domain, score, sigma, sigma_next, gen, sch, dc, last):
    """Predictor (noise dropped) → DC → corrector → DC in one domain; returns image iterates."""
    _, u_mean = S.reverse_diffusion(domain.encode(x), sigma, score, gen, sigma_next=sigma_next, add_noise=False)
    x = dc(domain.decode(u_mean, x))
    u = _corrector(domain.encode(x), sigma, score, gen, sch["snr"], int(sch["chains"]), last)
    return dc(domain.decode(u, x))


def low_rank(x, frames: int, rank: int, window: int = 6):
    """Block-Hankel low-rank projection of each sample's k-t data (x: (K·T, H, W))."""
    k = fft2c(x).view(-1, frames, *x.shape[-2:])
    out = torch.stack([hankel_project(s, rank, window) for s in k])
    return ifft2c(out.view(x.shape))


def tv_step(x, frames: int, sch, dc, state):
    """Our addition to the paper: the proximal step of spatio-temporal TV (weight λ = ``tv``
    on the peak-1 scale) on each sample's series, then data consistency; λ = 0 skips it."""
    lam = float(sch.get("tv", 0.0))
    if lam <= 0:
        return x
    z = x.view(-1, frames, *x.shape[-2:])
    return dc(tv_prox(z, lam, iterations=TV_ITERATIONS, state=state).view(x.shape))


def ladder(model, sch) -> list[tuple[float, float]]:
    top = float(sch["sigma_start"]) or model.sigma_max
    n = int(sch["iterations"])
    return S.pc_ladder(VESDE(model.sigma_min, max(top, model.sigma_min * 1.0001), n))


# --------------------------------------------------------------------------- sampler
def sample(models, zf, frames, dc, schedule, gen, live=None):
    """Yield (iteration, fused x, branches, σ) per iteration; ``zf``: (K·T, H, W) complex with
    peak ≈ 1; ``dc``: hard data consistency of such a batch; ``live()`` the current schedule."""
    k_model, x_model = models
    scores = padded(k_model), padded(x_model)
    domains = Domain("kspace", zf.shape[-2:], zf.device), Domain("image", zf.shape[-2:], zf.device)
    steps = ladder(k_model, schedule)
    if schedule["init"] == "random":
        x = dc(torch.complex(*(steps[0][0] * noise((2, *zf.shape), gen, zf.real))))
    elif not (schedule.get("renoise", True) and schedule.get("networks", True)):
        x = zf  # a warm start taken as it is (the ablation without networks never adds noise)
    else:
        # noise of σ on each real channel, as in training (x̃ = x + σz on (Re, Im))
        x = dc(zf + steps[0][0] * torch.complex(*noise((2, *zf.shape), gen, zf.real)))
    tv_state = {}  # the TV step's dual, kept across iterations
    for i, (sigma, sigma_next) in enumerate(steps):
        sch = live() if live else schedule
        last = i == len(steps) - 1
        if not sch.get("networks", True):  # ablation: the low-rank (and TV) steps alone
            lr = dc(low_rank(x, frames, int(sch["rank"]))) if sch["lowrank"] else None
            x = tv_step(x if lr is None else lr, frames, sch, dc, tv_state)
            yield i, x, {"low rank": lr}, sigma
            continue
        xk = branch(x, domains[0], scores[0], sigma, sigma_next, gen, sch, dc, last)
        lr = None
        if sch["lowrank"]:
            lr = xk = dc(low_rank(xk, frames, int(sch["rank"])))
        xi = branch(x, domains[1], scores[1], sigma, sigma_next, gen, sch, dc, last)
        f = float(sch["fusion"])
        x = tv_step(dc(f * xk + (1 - f) * xi), frames, sch, dc, tv_state)
        yield i, x, {"k-space branch": xk, "image branch": xi, "low rank": lr}, sigma


def schedule_from(params) -> dict:
    sch = dict(SCHEDULES[params["schedule"]])
    for key in ("iterations", "chains"):
        if int(params[key]) > 0:
            sch[key] = int(params[key])
    if params["sigma_start"] > 0:
        sch["sigma_start"] = float(params["sigma_start"])
    sch["snr"] = sch["snr"] * float(params["snr_scale"])
    if params["init"] != "schedule":
        sch["init"] = params["init"]
    if params["tv"] >= 0:
        sch["tv"] = float(params["tv"])
    sch.update(fusion=float(params["fusion"]), lowrank=bool(params["lowrank"]), rank=int(params["rank"]),
               networks=bool(params["networks"]))
    return sch


def evaluations_per_iteration(sch) -> int:
    """Network evaluations per frame and iteration: two predictors and 2·C corrector chains."""
    return 2 + 2 * int(sch["chains"]) if sch.get("networks", True) else 0


# --------------------------------------------------------------------------- streamed run
def _models(params, device):
    k, src_k = M.STORES["dd-ugm-k"].resolve(params["weights_k"], device)
    x, src_x = M.STORES["dd-ugm-x"].resolve(params["weights_x"], device)
    return (k, x), f"{src_k} + {src_x}"


def _check(problem):
    if len(problem.image_shape) != 3:
        raise ValueError("DD-UGM reconstructs dynamic series (frames, H, W) from k-t data; load a cine series "
                         "or k-t data with a 3-D mask")


@torch.no_grad()
def run(problem, params, cache=None, start=0):
    _check(problem)
    models, source = _models(params, problem.device)
    k, (t, h, w) = int(params["samples"]), problem.image_shape
    op, scale = problem.operator, problem.scale
    y = (problem.y / scale).to(torch.complex64)
    zf = op.initial_estimate(y).to(torch.complex64).expand(k, t, h, w).reshape(k * t, h, w)

    def dc(x):
        return op.data_consistency(x.view(k, t, h, w), y).reshape(k * t, h, w)

    gen = noise_generator(params, problem.device)
    rank = auto_rank(op.mask)

    def live():  # the schedule with this run's live values; rank 0 = the mask family's
        current["sch"] = schedule_from(params)
        current["sch"]["rank"] = current["sch"]["rank"] or rank
        return current["sch"]

    current = {}
    sch = live()
    n = int(sch["iterations"])
    make = UpdateMaker(problem, params, total=n, samples=k)

    warm = 0
    if sch["init"] == "lplus-s":  # warm start: L+S's iterations stream as the first stages
        warm_its = int(params["warm_iterations"]) or int(sch.get("warm_iterations", 50))
        ls_params = LiveParams(lplus_s.SPEC.params, {"iterations": warm_its}, "dmri")
        inner = lplus_s.run(problem, ls_params)
        try:
            while True:
                u = next(inner)
                warm = u.stage
                make.total = warm + n
                yield make(warm, u.estimate.expand(k, t, h, w), label=f"L+S warm start {warm}/{u.total}")
        except StopIteration as stop:
            zf = torch.from_numpy(stop.value.complex_image).to(problem.device) / scale
        zf = zf.expand(k, t, h, w).reshape(k * t, h, w)
    x, it = zf, 0
    for it, x, branches, sigma in sample(models, zf, t, dc, sch, gen, live=live):
        extras = {}
        if params["branches"]:
            extras = {name: v.view(k, t, h, w).mean(0) * scale for name, v in branches.items() if v is not None}
        yield make(warm + it + 1, x.view(k, t, h, w) * scale, extras=extras,
                   label=f"DD-UGM iteration {it + 1}/{n} · σ {sigma:.3g}", info={"sigma": sigma})
    evals = (it + 1) * evaluations_per_iteration(current["sch"]) * t * k
    return make.result(NAME, x.view(k, t, h, w) * scale, stages=warm + it + 1,
                       meta={"weights": source, "schedule": current["sch"], "network_evaluations_per_frame":
                             evals // max(t * k, 1), "network_evaluations": evals})


SPEC = MethodSpec(
    name=NAME,
    title="DD-UGM (score-based, cine)",
    modalities=("dmri",),
    params=(
        Param("weights_k", default="", kind="path", label="k-space model", weights="dd-ugm-k",
              help="k-space score model (.safetensors with its card); empty = the bundled weights"),
        Param("weights_x", default="", kind="path", label="image model", weights="dd-ugm-x",
              help="image score model (.safetensors with its card); empty = the bundled weights"),
        Param("schedule", "fast", kind="choice", choices=tuple(SCHEDULES), label="schedule",
              help="fast: warm start from L+S, 40 iterations of a short low-σ ladder with a TV step (our "
                   "default); paper: 1000 iterations from noise with 3 corrector chains"),
        Param("iterations", 0, kind="int", low=0, high=5000, label="iterations (0 = schedule's)"),
        Param("init", "schedule", kind="choice", choices=("schedule", "zero-filled", "lplus-s", "random"),
              label="start from", help="warm start of the sampler: the zero-filled series, the L+S reconstruction "
                                       "(its iterations stream first) or noise; 'schedule' = the schedule's"),
        Param("warm_iterations", 0, kind="int", low=0, high=1000, label="L+S warm-start iterations (0 = schedule's)",
              help="iterations of the L+S warm start; the fast schedule's 50 (L+S's own default)"),
        Param("sigma_start", 0.0, low=0.0, high=400.0, label="start σ (0 = schedule's)"),
        Param("chains", 0, kind="int", low=0, high=8, live=True, label="corrector chains C (0 = schedule's)"),
        Param("snr_scale", 1.0, low=0.01, high=100.0, live=True, log=True, label="corrector SNR ×",
              help="multiplier on the corrector's signal-to-noise ratio (0.075)"),
        Param("fusion", 0.75, low=0.0, high=1.0, live=True, label="k-space weight",
              help="fusion x = f·k-space branch + (1 − f)·image branch"),
        Param("lowrank", True, kind="bool", live=True, label="Hankel low rank"),
        Param("rank", 0, kind="int", low=0, high=10000, live=True, label="Hankel rank (0 = auto)",
              help="singular values kept of the block-Hankel matrix of 6×6 k-space windows; 0 = 54 (the "
                   "paper's ⌊1.5·36⌋) for Cartesian line masks, 250 for radial and random masks"),
        Param("tv", -1.0, low=-1.0, high=1.0, live=True, label="TV step λ (−1 = schedule's, 0 = off)",
              help="our addition to the paper's sampler: a spatio-temporal TV proximal step after every "
                   "iteration, λ relative to the data's peak; the fast schedule's 0.001, the paper's 0"),
        Param("networks", True, kind="bool", live=True, label="score-model steps",
              help="off: the low-rank and TV steps and data consistency alone (an ablation: what the networks "
                   "add)"),
        Param("branches", False, kind="bool", label="show branch layers",
              help="stream the k-space branch, image branch and low-rank output as extra layers"),
        *STOCHASTIC_PARAMS,
    ),
    run=run,
    learned=True,
    description="Score-based dynamic MRI with k-space and image score models, predictor-corrector sampling, "
                "block-Hankel low rank across frames (DD-UGM); K posterior samples give mean and std.",
    reference="DD-UGM (dual-domain unified generative model for dynamic MRI), https://github.com/yqx7150/DD-UGM",
)
