"""CGPD-CSNet: multi-ratio unrolled CS-MRI with two-grid-cycle correction, geometric prior
distillation and a condition module (Fan, Yang, Chen, Zhang, Dong, BSPC 84:104821, 2023).

Stage ℓ = 1..n_s (unshared weights), paper equations → code::

    (3)/(7) pre-relaxation   h_ℓ = x_{ℓ-1} − η_ℓ Aᴴ(A x_{ℓ-1} − y)          Stage.pre_relaxation
    (4)     correction       e_ℓ = I^P_ℓ Fᴴ_2h S_ℓ I^R_ℓ (M ⊙ (y − F h_ℓ))   Stage.correction
                             restriction I^R_ℓ: 2×2 stride-2 conv on (Re, Im) of the residual,
                             solver S_ℓ: 3×3 conv → 4 residual blocks (p ch.) → 3×3 conv, skip,
                             Fᴴ_2h: inverse FFT on the coarse grid,
                             prolongation I^P_ℓ: 2×2 stride-2 transposed conv
    (5)     concatenation    m_ℓ = [h_ℓ, e_ℓ, β_ℓ·1]
    (6)/(9) prior distillation x_ℓ = h_ℓ + W_ℓ ∗ dense_k(m_ℓ)                 PriorDistillation
    (10)    condition module [η, β] = CM(α): MLP 1 → p → p → 2·n_s, ReLU, ReLU, softplus
    (11)    loss             mean |x_{n_s} − x*| + mean |x_{(n_s+1)/2} − x*|

x⁰ = Aᴴy. Our FFT convention is used throughout (centred, orthonormal; physics/fft.py). The
gradient step is convention-free (the authors' unnormalised fft with 1/N ifft gives the same
FᴴMF), so η means the same as in the paper; only the k-space residual entering the correction
module is scaled differently (by 1/√(HW), and the coarse orthonormal inverse FFT by a further
constant), which the learned restriction/prolongation absorb. Measurements are divided by the
peak of |Aᴴy| inside the network and the output multiplied back, so one set of weights serves any
intensity scale. ``docs/methods/cgpd_csnet.md`` lists every deviation from the paper and code.

Image domain: ``complex=False`` (the paper's: real images, the real part of Aᴴ(·) after every
adjoint, 1-channel convolutions) or ``complex=True`` (2 channels Re/Im, for complex data such as
SIAT). The brain benchmark is real magnitude data, so both presets are real.

Use in code: ``TRAINING.build_model(CONFIGS["cpu"])`` builds a network; :func:`model_override`
runs the streamed method with an in-memory model (tests, notebooks) instead of a weights file.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import Param, UpdateMaker, resume_point, scale_param
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.physics.mri import as_operator
from napari_unrollrecon.physics.masks import make_mask, mask_family
from napari_unrollrecon.priors.blocks import ResBlock, parameter_count  # noqa: F401 - shared blocks

NAME = "cgpd-csnet"

# --------------------------------------------------------------------------- configurations
#: Mask families for multi-ratio training: generator kinds (physics.masks) and the paper's ratios.
#: The paper's "2D random" masks are variable density between our uniform and Gaussian kinds,
#: so that family draws either.
MASK_FAMILIES = {
    "cartesian": {"kinds": ("cartesian",), "ratios": (0.1, 0.2, 0.3, 0.4, 0.5)},
    "radial": {"kinds": ("radial",), "ratios": (0.1, 0.2, 0.3, 0.4, 0.5)},
    "random2d": {"kinds": ("random", "gaussian"), "ratios": (0.05, 0.1, 0.2, 0.3, 0.4)},
}

_TRAIN_DEFAULTS = {
    "complex": False,
    "masks": ["cartesian"],  # families drawn uniformly per sample
    "center_fraction": [0.02, 0.08],  # ACS fraction drawn uniformly per sample (not for radial)
    "checkpoint": False,  # recompute each stage in the backward pass: ~1/3 of the memory, +1 forward
}

CONFIGS = {
    # Paper: p=32, k=8, n_s=13; Adam 1e-4, batch 1, 500 epochs of 800 images.
    "paper": {"p": 32, "k": 8, "n_s": 13, **_TRAIN_DEFAULTS, "lr": 1e-4, "batch_size": 1},
    # Reduced for ~1 h on 2 CPU cores (docs/methods/cgpd_csnet.md has the timings).
    "cpu": {"p": 16, "k": 4, "n_s": 7, **_TRAIN_DEFAULTS, "lr": 5e-4, "batch_size": 1, "patch": 128},
    # The paper's 13 stages at the reduced width: what the dock shows stage by stage.
    "cpu13": {"p": 16, "k": 4, "n_s": 13, **_TRAIN_DEFAULTS, "lr": 5e-4, "batch_size": 1, "patch": 128},
}

#: Per-stage η/β multipliers are declared for this many stages (the paper's n_s).
MAX_STAGE_PARAMS = 13


def _arch(config: dict) -> dict:
    """Architecture keys of a config with their defaults; rejects nonsense early."""
    p, k, n_s = int(config.get("p", 32)), int(config.get("k", 8)), int(config.get("n_s", 13))
    if min(p, k, n_s) < 1:
        raise ValueError(f"CGPD-CSNet config needs p, k, n_s >= 1; got p={p}, k={k}, n_s={n_s}")
    return {"p": p, "k": k, "n_s": n_s, "complex": bool(config.get("complex", False))}


# --------------------------------------------------------------------------- layouts
def to_complex(x: torch.Tensor) -> torch.Tensor:
    """(B, c, H, W) real channels → (B, H, W) complex (c = 1: real image, c = 2: Re/Im)."""
    if x.shape[1] == 1:
        return torch.complex(x[:, 0], torch.zeros_like(x[:, 0]))
    return torch.complex(x[:, 0], x[:, 1])


def from_complex(z: torch.Tensor, channels: int) -> torch.Tensor:
    """(B, H, W) complex → (B, c, H, W); c = 1 keeps the real part (projection on real images)."""
    if channels == 1:
        return z.real.unsqueeze(1)
    return torch.stack((z.real, z.imag), dim=1)


def _pad_even(t: torch.Tensor) -> torch.Tensor:
    """Zero-pad H and W to even sizes so the stride-2 restriction sees every k-space sample."""
    ph, pw = t.shape[-2] % 2, t.shape[-1] % 2
    return F.pad(t, (0, pw, 0, ph)) if ph or pw else t


# --------------------------------------------------------------------------- modules
class Solver(nn.Module):
    """Error-based solution operator S_ℓ on the coarse k-space residual (2 channels Re/Im)."""

    def __init__(self, p: int, channels: int = 2, blocks: int = 4):
        super().__init__()
        self.head = nn.Conv2d(channels, p, 3, padding=1)
        self.blocks = nn.Sequential(*[ResBlock(p) for _ in range(blocks)])
        self.tail = nn.Conv2d(p, channels, 3, padding=1)

    def forward(self, r):
        return r + self.tail(self.blocks(self.head(r)))  # global skip


class PriorDistillation(nn.Module):
    """Geometric prior distillation P_ℓ (eq. 9): dense block of k conv3×3+ReLU layers of growth
    p on m_ℓ, fused by a 1×1 conv W_ℓ, added to h_ℓ (the first ``out_channels`` of m_ℓ)."""

    def __init__(self, in_channels: int, out_channels: int, p: int, k: int):
        super().__init__()
        self.out_channels = out_channels
        self.layers = nn.ModuleList(nn.Conv2d(in_channels + i * p, p, 3, padding=1) for i in range(k))
        self.fusion = nn.Conv2d(in_channels + k * p, out_channels, 1)

    def forward(self, m):
        features = m
        for conv in self.layers:
            features = torch.cat((features, F.relu(conv(features))), dim=1)
        return m[:, : self.out_channels] + self.fusion(features)


class ConditionModule(nn.Module):
    """CM (eq. 10): sampling ratio α → (η_1..η_ns, β_1..β_ns), positive through softplus."""

    def __init__(self, p: int, n_s: int):
        super().__init__()
        self.n_s = n_s
        self.fc1, self.fc2, self.fc3 = nn.Linear(1, p), nn.Linear(p, p), nn.Linear(p, 2 * n_s)

    def forward(self, ratio: torch.Tensor):
        out = F.softplus(self.fc3(F.relu(self.fc2(F.relu(self.fc1(ratio.reshape(-1, 1)))))))
        return out[:, : self.n_s], out[:, self.n_s:]


class Stage(nn.Module):
    """One unrolled stage: pre-relaxation D_ℓ, correction C_ℓ, prior distillation P_ℓ."""

    def __init__(self, p: int, k: int, channels: int):
        super().__init__()
        self.channels = channels
        self.restriction = nn.Conv2d(2, 2, 2, stride=2)
        self.solver = Solver(p)
        self.prolongation = nn.ConvTranspose2d(channels, channels, 2, stride=2)
        self.prior_distillation = PriorDistillation(2 * channels + 1, channels, p, k)

    def pre_relaxation(self, x, y, op, eta):
        """h = x − η Aᴴ(Ax − y), A = M F (eq. 7)."""
        grad = -as_operator(op).likelihood_grad(to_complex(x), y)
        return x - eta.view(-1, 1, 1, 1) * from_complex(grad, self.channels)

    def correction(self, h, y, op):
        """e = I^P Fᴴ S I^R r with r = M ⊙ (y − F h), on a grid twice as coarse (eq. 4)."""
        r = y - as_operator(op).A(to_complex(h))  # y is sampled data: M y = y
        r = _pad_even(torch.stack((r.real, r.imag), dim=1))  # clean (Re, Im) channel layout
        coarse = self.solver(self.restriction(r))
        e = self.prolongation(from_complex(ifft2c(torch.complex(coarse[:, 0], coarse[:, 1])), self.channels))
        return e[..., : h.shape[-2], : h.shape[-1]]

    def forward(self, x, y, op, eta, beta):
        """Returns (x_ℓ, e_ℓ); ``op`` the MRI operator (or its mask)."""
        op = as_operator(op)
        h = self.pre_relaxation(x, y, op, eta)
        e = self.correction(h, y, op)
        noise_map = beta.view(-1, 1, 1, 1).expand(h.shape[0], 1, *h.shape[-2:]).to(h.dtype)
        return self.prior_distillation(torch.cat((h, e, noise_map), dim=1)), e


class CGPDCSNet(nn.Module):
    """The network. Inputs: centred k-space ``y`` (B, H, W) complex, centred ``mask`` (H, W) or
    (B, H, W), ``ratio`` (B,) fed to the condition module. Images are in data units outside."""

    def __init__(self, p: int = 32, k: int = 8, n_s: int = 13, complex: bool = False):
        super().__init__()
        self.config = {"p": p, "k": k, "n_s": n_s, "complex": complex}
        self.channels = 2 if complex else 1
        self.n_stages = n_s
        self.middle = (n_s - 1) // 2  # 0-based index of stage (n_s + 1)/2, the deep-supervision output
        self.stages = nn.ModuleList(Stage(p, k, self.channels) for _ in range(n_s))
        self.condition_module = ConditionModule(p, n_s)
        self.checkpoint = False

    # pieces used by forward and by the streamed run
    def initial(self, y, op):
        """Normalised measurements, x⁰ = Aᴴy (normalised) and the per-sample scale (B,)."""
        x0 = as_operator(op).AH(y)
        scale = x0.abs().amax(dim=(-2, -1)).clamp_min(1e-12)
        y = y / scale.view(-1, 1, 1)
        return y, from_complex(x0 / scale.view(-1, 1, 1), self.channels), scale

    def coefficients(self, ratio, eta_scale=None, beta_scale=None):
        """(η, β), each (B, n_s); optional multipliers broadcast against them."""
        p = next(self.parameters())
        ratio = torch.as_tensor(ratio, dtype=p.dtype, device=p.device).reshape(-1)
        eta, beta = self.condition_module(ratio)
        eta = eta * eta_scale if eta_scale is not None else eta
        beta = beta * beta_scale if beta_scale is not None else beta
        return eta, beta

    def to_image(self, x, scale):
        """(B, c, H, W) normalised → (B, H, W) in data units (real, or complex if complex=True)."""
        img = to_complex(x) if self.channels == 2 else x[:, 0]
        return img * scale.view(-1, 1, 1)

    def forward(self, y, op, ratio, eta_scale=None, beta_scale=None) -> list[torch.Tensor]:
        """All stage outputs (n_s tensors (B, H, W) in data units)."""
        op = as_operator(op)
        y, x, scale = self.initial(y, op)
        eta, beta = self.coefficients(ratio, eta_scale, beta_scale)
        outs = []
        for l, stage in enumerate(self.stages):
            if self.checkpoint and self.training:
                x, _ = torch.utils.checkpoint.checkpoint(stage, x, y, op, eta[:, l], beta[:, l], use_reentrant=False)
            else:
                x, _ = stage(x, y, op, eta[:, l], beta[:, l])
            outs.append(self.to_image(x, scale))
        return outs


# --------------------------------------------------------------------------- training
def build_model(config: dict) -> CGPDCSNet:
    """The network for a config (only the architecture keys p, k, n_s, complex are read)."""
    model = CGPDCSNet(**_arch(config))
    model.checkpoint = bool(config.get("checkpoint", False))
    return model


def _draw(rng: torch.Generator, n: int) -> int:
    return int(torch.randint(0, n, (1,), generator=rng, device=rng.device).item())


def _uniform(rng: torch.Generator, lo: float, hi: float) -> float:
    return lo + (hi - lo) * float(torch.rand(1, generator=rng, device=rng.device).item())


def draw_mask(shape, rng: torch.Generator, config: dict) -> np.ndarray:
    """One centred mask: a family from ``config["masks"]``, one of its kinds and ratios, a seed.

    A family is a name of :data:`MASK_FAMILIES` or ``file:PATTERN`` (published masks, ``{pct}`` =
    ratio in percent; ratios from ``config["ratios"]``, default the Cartesian set), read through
    :func:`~napari_unrollrecon.methods.learned.sample_masks`.
    """
    families = list(config.get("masks") or ["cartesian"])
    unknown = [f for f in families if f not in MASK_FAMILIES and not f.startswith("file:")]
    if unknown:
        raise ValueError(f"unknown mask families {unknown} in the config; choose from "
                         f"{list(MASK_FAMILIES)} or 'file:PATTERN' (e.g. file:/masks/mask_{{pct}}.mat)")
    name = families[_draw(rng, len(families))]
    if name.startswith("file:"):
        ratios = config.get("ratios") or MASK_FAMILIES["cartesian"]["ratios"]
        return learned.sample_masks(1, tuple(shape), [name], ratios, rng).mask[0].numpy()
    family = MASK_FAMILIES[name]
    kind = family["kinds"][_draw(rng, len(family["kinds"]))]
    ratio = family["ratios"][_draw(rng, len(family["ratios"]))]
    cf = config.get("center_fraction")
    if kind == "radial" or cf is None:
        cf = None  # radial spokes cover the centre already
    elif isinstance(cf, (list, tuple)):
        cf = _uniform(rng, float(cf[0]), float(cf[1]))
    return make_mask(kind, tuple(shape), ratio, seed=_draw(rng, 2**31 - 1), center_fraction=cf)


def make_batch(targets: torch.Tensor, rng: torch.Generator, config: dict) -> dict:
    """Simulate y = M F x per sample (our convention) with a mask drawn per sample.

    ``targets`` (B, H, W) real magnitude or complex. A real-image model (``complex=False``) takes
    the magnitude of complex targets. The condition module gets each mask's realised ratio.
    """
    if targets.ndim != 3:
        raise ValueError(f"CGPD-CSNet trains on batches of 2D images (B, H, W); got shape {tuple(targets.shape)}")
    dev = targets.device
    if _arch(config)["complex"]:
        target = targets.to(torch.complex64)
    else:
        target = (targets.abs() if torch.is_complex(targets) else targets).to(torch.float32)
    masks = torch.stack([torch.from_numpy(draw_mask(targets.shape[-2:], rng, config)) for _ in range(targets.shape[0])])
    masks = masks.to(dev)
    y = masks * fft2c(target.to(torch.complex64))
    return {"target": target, "y": y, "mask": masks, "ratio": masks.mean(dim=(-2, -1))}


def _l1(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = a - b
    return (torch.view_as_real(d) if torch.is_complex(d) else d).abs().mean()


def loss(model: CGPDCSNet, batch: dict):
    """Eq. 11: mean L1 of the final and the middle stage output (complex: over Re and Im)."""
    outs = model(batch["y"], batch["mask"], batch["ratio"])
    final, middle = _l1(outs[-1], batch["target"]), _l1(outs[model.middle], batch["target"])
    return final + middle, {"l1_final": final.item(), "l1_middle": middle.item()}


def predict(model: CGPDCSNet, batch: dict) -> torch.Tensor:
    """Final stage output (B, H, W), real or complex like the targets."""
    return model(batch["y"], batch["mask"], batch["ratio"])[-1]


TRAINING = learned.TrainingSpec(build_model=build_model, make_batch=make_batch, loss=loss,
                                predict=predict, configs=CONFIGS)


# --------------------------------------------------------------------------- weights
STORE = learned.ModelStore(NAME, build_model, CGPDCSNet)


def model_override(model: nn.Module):
    """Run the method with ``model`` (an in-memory :class:`CGPDCSNet`) instead of a weights file.

    For tests and notebooks::

        with model_override(build_model(CONFIGS["cpu"])):
            result = engine.stream.run(SPEC, problem)
    """
    return STORE.override(model)


def resolve_model(weights, device, choose=None) -> tuple[CGPDCSNet, str]:
    """The model to run and a short description of where it came from."""
    return STORE.resolve(weights, device, choose)


def card_family(card: dict) -> str:
    """The mask family a model was trained for (the paper trains one model per family): the
    card's ``mask_family``, else the first generated family it names, else Cartesian."""
    config = card.get("config", {})
    named = [m for m in config.get("masks", []) if m in MASK_FAMILIES]
    return config.get("mask_family") or (named[0] if named else "cartesian")


def pick_model(problem, weights):
    """(model, source, note): with no weights given, the bundled model trained for the family of
    the problem's mask (Cartesian lines, radial spokes, 2D random points). The note says when no
    bundled model matches and another one is used, else where the model's card measured it below
    a classical method at this ratio (:func:`learned.weaker_note`)."""
    family = mask_family(problem.operator.mask.detach().cpu().numpy())
    chosen = {}

    def choose(found):
        match = [p for p in found if card_family(learned.read_card(p)) == family]
        chosen["path"] = (match or found)[0]
        return chosen["path"]

    model, source, card = STORE.resolve_card(weights, problem.device, choose)
    mask = problem.operator.mask
    weaker = learned.weaker_note(card, "CGPD-CSNet", family=family, ratio=float((mask != 0).float().mean()))
    path = chosen.get("path")
    if path is None or card_family(card) == family:
        return model, source, weaker
    return model, source, (f"no bundled CGPD-CSNet model was trained for {family} masks; the {card_family(card)} "
                           f"model {path.stem} is used, so expect less than its trained quality")


# --------------------------------------------------------------------------- streamed run
def _multipliers(params, n_s: int, device):
    """Effective η and β multipliers per stage: global × per-stage override."""
    eta = [params["eta_scale"] * params.get(f"eta_scale_{l + 1}", 1.0) for l in range(n_s)]
    beta = [params["beta_scale"] * params.get(f"beta_scale_{l + 1}", 1.0) for l in range(n_s)]
    return torch.tensor([eta], device=device), torch.tensor([beta], device=device)


def _condition_ratio(problem, params) -> float:
    if params["condition_ratio"] > 0:
        return float(params["condition_ratio"])
    ratio = problem.meta.get("ratio")
    return float(ratio) if ratio else problem.operator.sampling_ratio


def _fingerprint(model, problem) -> tuple:
    """Identifies the (model, data) pair a cache was filled for."""
    y = problem.y
    return (learned.model_token(model), tuple(y.shape), float(y.abs().sum()), problem.operator.key())


@torch.no_grad()
def _coefficients(model, problem, params):
    """(ratio, learned η, β, effective η, β) for the current parameters; (1, n_s) each."""
    ratio = _condition_ratio(problem, params)
    eta0, beta0 = model.coefficients([ratio])
    eta_m, beta_m = _multipliers(params, model.n_stages, eta0.device)
    return ratio, eta0, beta0, eta0 * eta_m, beta0 * beta_m


def _mirror(k: torch.Tensor) -> torch.Tensor:
    """k(−u) for centred k-space (DC at (H//2, W//2)): flip, and shift by one on even sizes."""
    h, w = k.shape[-2:]
    return torch.roll(torch.flip(k, (-2, -1)), shifts=(1 - h % 2, 1 - w % 2), dims=(-2, -1))


def phase_note(model, problem) -> str | None:
    """A real-valued model reconstructs the real part: say so when the data has a phase to lose.

    A real image has Hermitian k-space, k(−u) = conj k(u): the part of the measured energy that
    breaks this symmetry (on points sampled at both u and −u) is the phase's share."""
    if model.channels != 1:
        return None
    y = problem.y
    both = (y.abs() > 0) & (_mirror(y).abs() > 0)
    if not bool(both.any()):
        return None
    frac = float((y - _mirror(y).conj())[both].norm() / (2 * y[both].norm()).clamp_min(1e-12))
    if frac <= 0.05:
        return None
    return (f"CGPD-CSNet (this model) is real-valued: it reconstructs the real part, and this data has a phase "
            f"({100 * frac:.0f}% of the measured k-space is not Hermitian), which the result loses; use a "
            "magnitude image or a complex model")


def run(problem, params, cache=None, start=0):
    model, source, family_note = pick_model(problem, params["weights"])
    note = "; ".join(n for n in (family_note, phase_note(model, problem)) if n) or None
    n_s = model.n_stages
    if not 0 <= int(start) <= n_s:
        raise ValueError(f"start must be a stage number in 0..{n_s}, got {start}")
    make = UpdateMaker(problem, params, total=n_s)
    op = problem.operator  # built on problem.device
    key = _fingerprint(model, problem)
    with torch.no_grad():  # not held across the yields below: grad mode is per thread
        y, x, scale = model.initial(problem.y.unsqueeze(0).to(torch.complex64), op)
    first, state = resume_point(cache, key, start, "CGPD-CSNet")
    x = x if state is None else state
    for l in range(first, n_s):
        ratio, eta0, beta0, eta, beta = _coefficients(model, problem, params)
        if cache is not None:
            cache.put(l, x)
        with torch.no_grad():
            x, e = model.stages[l](x, y, op, eta[:, l], beta[:, l])
            image = model.to_image(x, scale)[0]
        extras = {"correction": _correction_view(model, e, scale)} if params["show_correction"] else {}
        info = {"eta": float(eta[0, l]), "beta": float(beta[0, l]), "eta_learned": float(eta0[0, l]),
                "beta_learned": float(beta0[0, l]), "condition_ratio": ratio, **({"note": note} if note else {})}
        yield make(l + 1, image, label=f"CGPD-CSNet stage {l + 1}/{n_s}", extras=extras, info=info)
    if cache is not None:
        cache.put(n_s, x)
    image = model.to_image(x, scale)[0]
    meta = {"weights": source, "config": dict(model.config)}
    return make.result(NAME, image, stages=n_s, meta={**meta, "note": note} if note else meta)


def _correction_view(model, e, scale) -> np.ndarray:
    """e_ℓ in data units: signed for real images, magnitude for complex ones."""
    img = model.to_image(e, scale)[0]
    img = img.abs() if torch.is_complex(img) else img
    return img.detach().to(torch.float32).cpu().numpy()


def _stage_params() -> tuple[Param, ...]:
    out = []
    for l in range(MAX_STAGE_PARAMS):
        out.append(Param(f"eta_scale_{l + 1}", 1.0, low=0.0, high=10.0, live=True, stage=l + 1,
                         label=f"η × stage {l + 1}", help=f"multiplier on the learned step length of stage {l + 1}"))
        out.append(Param(f"beta_scale_{l + 1}", 1.0, low=0.0, high=10.0, live=True, stage=l + 1,
                         label=f"β × stage {l + 1}", help=f"multiplier on the learned noise level of stage {l + 1}"))
    return tuple(out)


SPEC = learned.learned_spec(
    NAME, "CGPD-CSNet", ("mri",),
    (
        Param("condition_ratio", 0.0, low=0.0, high=1.0, live=True, label="ratio fed to CM (0 = realised)",
              help="sampling ratio given to the condition module; 0 uses the data's realised ratio"),
        scale_param("eta_scale", "η × (all stages)", "multiplier on every stage's learned step length"),
        scale_param("beta_scale", "β × (all stages)", "multiplier on every stage's learned noise level"),
        Param("show_correction", True, kind="bool", live=True, label="stream correction e_ℓ",
              help="send each stage's two-grid correction term along with the image"),
        *_stage_params(),
    ),
    run=run,
    resumable=True,
    description="Unrolled CS-MRI: gradient step, two-grid k-space correction, dense prior distillation; "
                "step lengths and noise levels from the sampling ratio (one model for every ratio).",
    reference="X. Fan, Y. Yang, K. Chen, J. Zhang, K. Dong, 'An interpretable MRI reconstruction network with "
              "two-grid-cycle correction and geometric prior distillation', Biomed. Signal Process. Control 84 "
              "(2023) 104821; github.com/fanxiaohong/CGPD-CSNet.",
)
