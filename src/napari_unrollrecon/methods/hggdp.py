"""HGGDP: deep gradients of generative density priors in a high-dimensional embedding, for MRI
(Zhu, Liu et al., "Homotopic gradients of generative density priors for MR image reconstruction").

Paper → code::

    score network   s(x, σ) ≈ ∇ log p_σ(x): NCSN RefineNet, CIN++, ELU, x → 2x − 1 inside,
                    10 levels σ geometric 1 → 0.01                      priors.ncsn.NCSNRefineNet
    embedding       x (complex) → 3 stacked copies of (Re, Im): 6 channels          to_stack
    training        ½‖s(x̃, σ) + (x̃ − x)/σ²‖²σ², x̃ = x + σz with z independent on every
                    channel, so each copy carries its own noise ("more artificial noise in the
                    embedding space")                                              loss
    reconstruction  per level σ_i, steps j: x ← x + α_i·mean_v s(x + σ_i z_v, σ_i),
                    α_i = ε(σ_i/σ_L)², ε = 1.5e-6, V = 3 noise views ("multi-view noise");
                    average the copies; hard data consistency k = y + (1 − M)·F x   schedule "paper"

Our fast default (schedule "fast", chosen on validation slices; docs/methods/hggdp.md) keeps the
network and the consistency step but samples like a predictor-corrector VE-SDE solver: it starts
from the zero-filled image plus noise of σ_start, and at each of the levels below σ_start takes a
reverse-diffusion predictor step and ``steps`` Langevin corrector steps (signal-to-noise rule),
each followed by hard data consistency on every copy; it ends on the noise-free mean. The fresh
noise of both steps is scaled by a temperature T = 0.3 (a sharpened posterior: +2.7 dB for one
sample on the validation slices, where T = 1 falls below TV).

Deviations from the authors' code: Gaussian instead of uniform perturbation noise (the method as
described; the uniform draw is a quirk of their code); images are divided by the peak of the
zero-filled image before sampling and multiplied back after.
"""

from __future__ import annotations

import math

import torch

from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import STOCHASTIC_PARAMS, Param, UpdateMaker, noise_generator
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.priors import ncsn
from napari_unrollrecon.priors.score import dsm_loss
from napari_unrollrecon.priors.channels import copies_to_channels, from_channels, to_channels
from napari_unrollrecon.samplers import steps as S
from napari_unrollrecon.samplers.sde import VESDE, noise

NAME = "hggdp"
COPIES = 3

CONFIGS = {
    # HGGDP's network: 30,124,550 parameters (tests/priors/test_ncsn.py counts them layer by layer).
    "paper": dict(ncsn.PAPER),
    # CPU: same blocks at ngf 24 on a 2×2-folded input (¼ of the pixels), continuous σ, output ÷σ;
    # 1.1 M parameters, ≈0.19 s per 256² evaluation on 2 threads (benchmarks/bench_hggdp.py).
    "cpu": {**ncsn.PAPER, "ngf": 24, "space_to_depth": True, "interpolate": True, "scale_by_sigma": True},
    # The bundled network: ngf 16 at full resolution (space-to-depth learned far slower), 520,262
    # parameters; ≈0.2 s per 256² evaluation on 2 threads (benchmarks/bench_hggdp.py).
    "cpu16": {**ncsn.PAPER, "ngf": 16, "interpolate": True, "scale_by_sigma": True},
}

#: Schedules: the paper's annealed Langevin and our fast predictor-corrector default.
SCHEDULES = {
    "paper": {"levels": 10, "steps": 80, "sigma_start": 1.0, "views": 3, "step_size": 1.5e-6,
              "corrector": "gradient", "perturb": 1.0, "predictor": "none", "init": "random", "temperature": 1.0},
    "fast": {"levels": 24, "steps": 1, "sigma_start": 0.3, "views": 1, "step_size": 0.64,
             "corrector": "langevin", "perturb": 0.0, "predictor": "reverse_diffusion",
             "init": "zero-filled", "temperature": 0.3},
}


#: Default noise temperature of the fast schedule, chosen on the validation slices (docs/methods/hggdp.md).
TEMPERATURE = SCHEDULES["fast"]["temperature"]


# --------------------------------------------------------------------------- embedding
def to_stack(z: torch.Tensor, copies: int = COPIES) -> torch.Tensor:
    """Complex (B, H, W) → real (B, 2·copies, H, W): copies of (Re, Im)."""
    return to_channels(z, copies)


from_stack = from_channels  # (B, 2·copies, H, W) → complex (B, copies, H, W)


def consistency(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard k-space consistency on every copy: k = M·y + (1 − M)·F x (mask, y: (B, H, W))."""
    k = fft2c(from_stack(x))
    k = mask[:, None] * y[:, None] + (1 - mask[:, None]) * k
    return copies_to_channels(ifft2c(k))


# --------------------------------------------------------------------------- training
def build_model(config: dict) -> ncsn.NCSNRefineNet:
    return ncsn.build(config)


def _draw_sigma(n: int, config: dict, rng: torch.Generator) -> torch.Tensor:
    """One noise level per sample: a ladder level (paper), or log-uniform in [σ_min, σ_max]."""
    lo, hi = math.log(config["sigma_min"]), math.log(config["sigma_max"])
    if config.get("interpolate"):
        return torch.exp(lo + (hi - lo) * torch.rand(n, generator=rng))
    ladder = ncsn.sigma_ladder(config["sigma_max"], config["sigma_min"], config["n_levels"]).float()
    return ladder[torch.randint(config["n_levels"], (n,), generator=rng)]


def make_batch(targets: torch.Tensor, rng: torch.Generator, config: dict) -> dict:
    """Noisy stacked copies for score matching, plus a radial 15 % measurement for validation.

    ``intensity`` (config, default [0.8, 1.25]) scales each image at random: at run time images are
    normalised by the peak of the zero-filled image, which is not exactly the true peak."""
    if targets.ndim != 3:
        raise ValueError(f"HGGDP trains on batches of 2D images (B, H, W); got shape {tuple(targets.shape)}")
    dev, b = targets.device, targets.shape[0]
    lo, hi = config.get("intensity", [0.8, 1.25])
    gain = lo + (hi - lo) * torch.rand(b, generator=rng)
    target = targets.to(torch.complex64) * gain.to(dev).view(-1, 1, 1)
    x = to_stack(target, config["channels"] // 2)
    sigma = _draw_sigma(b, config, rng)
    z = torch.randn(x.shape, generator=rng).to(dev)
    draw = learned.sample_masks(b, tuple(targets.shape[-2:]), config.get("val_masks") or ["radial"],
                                config.get("val_ratios") or [0.15], rng, device=dev)
    seed = int(torch.randint(2**31 - 1, (1,), generator=rng))
    return {"target": target, "x": x, "sigma": sigma.to(dev), "z": z, "mask": draw.mask,
            "y": draw.mask * fft2c(target), "seed": seed}


def loss(model, batch: dict):
    """Denoising score matching, weighted by σ²: ½·mean ‖σ·s(x + σz, σ) + z‖²."""
    value, per = dsm_loss(model, batch["x"], batch["sigma"], batch["z"])
    return value, {"dsm": float(per.mean())}


#: The short reconstruction validation runs (fast schedule: 24-level ladder from σ 0.3).
VALIDATION_SCHEDULE = SCHEDULES["fast"]


@torch.no_grad()
def predict(model, batch: dict) -> torch.Tensor:
    gen = torch.Generator(device=batch["y"].device).manual_seed(batch["seed"])
    x = None
    dc = mask_consistency(batch["y"], batch["mask"])
    for _level, _step, x, _sigma in sample(model, ifft2c(batch["y"]), dc, VALIDATION_SCHEDULE, gen):
        pass
    return x


TRAINING = learned.TrainingSpec(build_model=build_model, make_batch=make_batch, loss=loss, predict=predict,
                                configs=CONFIGS)
STORE = learned.ModelStore(NAME, build_model, ncsn.NCSNRefineNet)


# --------------------------------------------------------------------------- sampling
def _initial(zf, schedule, copies, sigma0, gen, dc):
    x = to_stack(zf, copies)
    if schedule["init"] == "random":  # the authors start from uniform noise in [-1, 1]
        return dc(torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1)
    return dc(x + sigma0 * noise(x.shape, gen, x))


def ladder_length(model, schedule: dict) -> int:
    return len(S.pc_ladder(VESDE(model.sigma_min, model.sigma_max, schedule["levels"]), schedule["sigma_start"]))


def steps_per_level(schedule: dict) -> int:
    """Network-evaluation rounds per level: corrector steps plus the predictor step."""
    return int(schedule["steps"]) + (schedule["predictor"] != "none")


def sample(model, zf: torch.Tensor, dc, schedule: dict, gen: torch.Generator, live=None):
    """Yield (level, step, mean over copies (B, H, W) complex, σ) after every step.

    ``zf``: zero-filled images (B, H, W) with peak ≈ 1; ``dc(x)``: hard data consistency of a
    stacked iterate. ``schedule`` keys: levels, steps, sigma_start, views, step_size, perturb,
    predictor, corrector, init, optional sigma_stop; ``live()`` (optional) returns the current
    schedule, read at every level (live changes).
    """
    ladder = S.pc_ladder(VESDE(model.sigma_min, model.sigma_max, schedule["levels"]), schedule["sigma_start"])
    x = _initial(zf, schedule, model.channels // 2, ladder[0][0], gen, dc)
    for level, (sigma, sigma_next) in enumerate(ladder):
        sch = live() if live else schedule
        if sigma < sch.get("sigma_stop", 0.0):
            break
        score = S.averaged_score(model, int(sch["views"]), gen, perturb=float(sch.get("perturb", 0.0)))
        corrector = S.get(S.CORRECTORS, sch["corrector"])
        temp = float(sch.get("temperature", 1.0))
        opts = {"snr": sch["step_size"], "eps": sch["step_size"], "sigma_last": model.sigma_min, "temperature": temp}
        for j in range(int(sch["steps"])):
            x, x_mean = corrector(x, sigma, score, gen, **opts)
            x = dc(x)
            yield level, j, from_stack(dc(x_mean)).mean(1), sigma
        if sch["predictor"] != "none":
            last = sigma_next == 0.0
            x, x_mean = S.get(S.PREDICTORS, sch["predictor"])(x, sigma, score, gen, sigma_next=sigma_next,
                                                              add_noise=not last, temperature=temp)
            x = dc(x_mean if last else x)
            yield level, int(sch["steps"]), from_stack(dc(x_mean)).mean(1), sigma


def mask_consistency(y: torch.Tensor, mask: torch.Tensor):
    """Hard consistency of stacked iterates with k-space ``y`` sampled at ``mask`` (B, H, W)."""
    return lambda x: consistency(x, y, mask)


def operator_consistency(operator, y: torch.Tensor):
    """Hard consistency through the operator protocol (every copy of every sample)."""
    return lambda x: copies_to_channels(operator.data_consistency(from_stack(x), y))


# --------------------------------------------------------------------------- streamed run
def schedule_from(params) -> dict:
    """The named schedule with the user's overrides (0 / -1 = the schedule's own value)."""
    sch = dict(SCHEDULES[params["schedule"]])
    for key in ("levels", "steps", "views"):
        if int(params[key]) > 0:
            sch[key] = int(params[key])
    if params["sigma_start"] > 0:
        sch["sigma_start"] = float(params["sigma_start"])
    sch["step_size"] = sch["step_size"] * float(params["step_scale"])
    sch["sigma_stop"] = float(params["sigma_stop"])
    sch["temperature"] = float(params["temperature"])
    return sch


@torch.no_grad()
def run(problem, params, cache=None, start=0):
    model, source = STORE.resolve(params["weights"], problem.device)
    k = int(params["samples"])
    op, scale = problem.operator, problem.scale
    y = problem.y / scale
    zf = op.initial_estimate(y).expand(k, *y.shape[-2:]).to(torch.complex64)
    gen = noise_generator(params, problem.device)
    sch = schedule_from(params)
    n_levels = ladder_length(model, sch)

    def total(s):
        return n_levels * steps_per_level(s)

    make = UpdateMaker(problem, params, total=total(sch), samples=k)
    current = {"sch": sch}

    def live():
        current["sch"] = schedule_from(params)
        return current["sch"]

    stage, x = 0, zf
    for level, j, x, sigma in sample(model, zf, operator_consistency(op, y), sch, gen, live=live):
        stage += 1
        make.total = max(stage, stage + (n_levels - level - 1) * steps_per_level(current["sch"])
                         + steps_per_level(current["sch"]) - j - 1)
        yield make(stage, x * scale, label=f"HGGDP level {level + 1}/{n_levels} · step {j + 1} · σ {sigma:.3g}",
                   info={"level": level + 1, "step": j + 1, "sigma": sigma})
    return make.result(NAME, x * scale, stages=stage,
                       meta={"weights": source, "schedule": current["sch"], "network_evaluations":
                             stage * int(current["sch"]["views"])})


SPEC = learned.learned_spec(
    NAME, "HGGDP (score-based)", ("mri",),
    (
        Param("schedule", "fast", kind="choice", choices=tuple(SCHEDULES), label="schedule",
              help="fast: warm-started predictor-corrector (our default); paper: 10 levels × 80 annealed "
                   "Langevin steps with 3 noise views"),
        Param("levels", 0, kind="int", low=0, high=1000, label="σ levels (0 = schedule's)"),
        Param("steps", 0, kind="int", low=0, high=1000, live=True, label="steps per level (0 = schedule's)",
              help="corrector steps per level; a change applies from the next level"),
        Param("step_scale", 1.0, low=0.01, high=100.0, live=True, log=True, label="step size ×",
              help="multiplier on the schedule's step size (corrector SNR, or ε of the paper schedule)"),
        Param("views", 0, kind="int", low=0, high=8, live=True, label="noise views V (0 = schedule's)",
              help="noisy copies whose scores are averaged (paper schedule), evaluated as one batch"),
        Param("sigma_start", 0.0, low=0.0, high=1.0, label="start σ (0 = schedule's)",
              help="warm start: the zero-filled image plus noise of this σ enters the ladder here"),
        Param("sigma_stop", 0.0, low=0.0, high=1.0, live=True, label="stop at σ",
              help="end the run at the first level below this σ"),
        Param("temperature", TEMPERATURE, low=0.0, high=1.0, live=True, label="noise temperature",
              help="multiplier on the fresh noise of the predictor and corrector steps: 1 = the sampler as "
                   "derived; below 1 a sharpened posterior (between a sample and its mode: a better single-"
                   "sample PSNR, less spread over K samples); the paper schedule adds no such noise"),
        *STOCHASTIC_PARAMS,
    ),
    run=run,
    description="Score-based reconstruction with a noise-conditional score network on stacked copies of the image "
                "(HGGDP): annealed sampling with hard k-space consistency, K posterior samples (mean and std).",
    reference="Zhu, Liu et al., 'Homotopic gradients of generative density priors for MR image reconstruction' "
              "(HGGDP), IEEE TMI 2021, https://github.com/yqx7150/HGGDP",
)
