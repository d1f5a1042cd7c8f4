"""DD-UGM's two score models (k-space and image) and how they are trained.

Both are VE-SDE score networks on single frames carried as 2 real channels (Re, Im): the k-space
model on ramp-weighted k-space (physics.kweight), the image model on images. One architecture
(priors.ncsnpp), one denoising score-matching loss (priors.score.dsm_loss) shared with HGGDP.

Training data (training/configs/dd-ugm.toml): cardiac magnitude frames (heart patients 31 and 32,
the ACDC slice, the free-breathing series), centre-cropped or zero-padded to 192². They are
magnitude images, so every draw gets a smooth synthetic phase (:func:`smooth_phase`, a random
quadratic in x and y, the shape of the slowly varying phase of real coil-combined images), and a
random gain, as runs are normalised by the zero-filled series' peak.
"""

from __future__ import annotations

import math

import torch

from napari_unrollrecon.methods import learned
from napari_unrollrecon.physics import kweight
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.priors import ncsnpp
from napari_unrollrecon.priors.channels import as_complex, to_channels
from napari_unrollrecon.priors.score import dsm_loss

CONFIGS = {
    # 65,987,970 parameters (tests/priors/test_ncsnpp.py); the authors report ≈65 M.
    "paper": dict(ncsnpp.PAPER),
    # CPU: 4 levels of one block at width 24 on a 2×2-folded input, no attention but the middle's;
    # ≈1 M parameters, ≈0.06 s per 192² frame on 2 threads (benchmarks/bench_ddugm.py).
    "cpu": {**ncsnpp.PAPER, "nf": 24, "ch_mult": (1, 2, 2, 2), "num_res_blocks": 1, "attn_levels": (), "dropout": 0.0,
            "space_to_depth": 2},
}
DOMAINS = ("kspace", "image")
VAL_SIGMA = 0.1  # validation: one Tweedie denoising step at this σ


def build_model(config: dict) -> ncsnpp.NCSNpp:
    return ncsnpp.build(config)


def smooth_phase(b: int, shape, rng: torch.Generator, strength: float = math.pi) -> torch.Tensor:
    """(B, H, W) random phase: a constant in [−π, π) plus a random quadratic of size ``strength``."""
    h, w = shape
    yy, xx = torch.meshgrid(torch.linspace(-1, 1, h), torch.linspace(-1, 1, w), indexing="ij")
    basis = torch.stack([xx, yy, xx * xx, yy * yy, xx * yy])  # (5, H, W)
    coef = torch.randn(b, 5, generator=rng) * strength / 4
    const = (torch.rand(b, generator=rng) * 2 - 1) * math.pi
    return const.view(-1, 1, 1) + torch.einsum("bk,khw->bhw", coef, basis)


def to_domain(images: torch.Tensor, domain: str, c: float = kweight.AUTHORS_C) -> torch.Tensor:
    """Complex frames (B, H, W) → the model's channels: (Re, Im) of the image or of w·F(x)."""
    if domain == "image":
        return to_channels(images)
    return to_channels(kweight.weight(fft2c(images), kweight.ramp(images.shape, c, images.device)))


def from_domain(x: torch.Tensor, domain: str, fallback_k: torch.Tensor | None = None,
                c: float = kweight.AUTHORS_C) -> torch.Tensor:
    """The inverse of :func:`to_domain` → complex frames; k-space needs the DC from ``fallback_k``."""
    z = as_complex(x)
    if domain == "image":
        return z
    k = kweight.unweight(z, kweight.ramp(z.shape, c, z.device), fallback_k)
    return ifft2c(k)


def _draw_sigma(n: int, config: dict, rng: torch.Generator) -> torch.Tensor:
    """Log-uniform over [σ_min, σ_max]; with ``sigma_focus = [lo, hi, p]`` a share p of the draws
    is log-uniform over [lo, hi] instead: the warm-started fast schedule runs the networks at
    σ ≤ 0.015 only, where a log-uniform draw over [0.01, 4] puts 7 % of the training."""
    lo, hi = math.log(config["sigma_min"]), math.log(config["sigma_max"])
    u = torch.rand(n, generator=rng)
    focus = config.get("sigma_focus")
    if not focus:
        return torch.exp(lo + (hi - lo) * u)
    f_lo, f_hi = math.log(focus[0]), math.log(focus[1])
    pick = torch.rand(n, generator=rng) < float(focus[2])
    return torch.exp(torch.where(pick, f_lo + (f_hi - f_lo) * u, lo + (hi - lo) * u))


def batch_maker(domain: str):
    def make_batch(targets: torch.Tensor, rng: torch.Generator, config: dict) -> dict:
        if targets.ndim != 3:
            raise ValueError(f"DD-UGM trains on batches of single frames (B, H, W); got {tuple(targets.shape)}")
        dev, b = targets.device, targets.shape[0]
        lo, hi = config.get("intensity", [0.7, 1.3])
        gain = lo + (hi - lo) * torch.rand(b, generator=rng)
        phase = smooth_phase(b, targets.shape[-2:], rng)
        target = (targets.abs() * gain.view(-1, 1, 1).to(dev) * torch.exp(1j * phase).to(dev)).to(torch.complex64)
        x = to_domain(target, domain)
        sigma = _draw_sigma(b, config, rng).to(dev)
        z = torch.randn(x.shape, generator=rng).to(dev)
        val_z = torch.randn(x.shape, generator=rng).to(dev)
        return {"target": target, "x": x, "sigma": sigma, "z": z, "val_z": val_z, "domain": domain,
                "val_sigma": float(config.get("val_sigma", VAL_SIGMA))}

    return make_batch


def loss(model, batch: dict):
    value, per = dsm_loss(model, batch["x"], batch["sigma"], batch["z"])
    return value, {"dsm": float(per.mean())}


@torch.no_grad()
def predict(model, batch: dict) -> torch.Tensor:
    """Validation: denoise at σ = VAL_SIGMA (or the config's ``val_sigma``) in the model's domain
    by Tweedie's formula, x̂ = x̃ + σ²·s(x̃, σ), back to the image (k-space keeps the true DC,
    always sampled)."""
    level = batch.get("val_sigma", VAL_SIGMA)
    x, sigma = batch["x"], torch.full((batch["x"].shape[0],), level, device=batch["x"].device)
    noisy = x + level * batch["val_z"]
    den = noisy + level**2 * model(noisy, sigma)
    return from_domain(den, batch["domain"], fallback_k=fft2c(batch["target"]))


def training(domain: str) -> learned.TrainingSpec:
    return learned.TrainingSpec(build_model=build_model, make_batch=batch_maker(domain), loss=loss,
                                predict=predict, configs=CONFIGS)


#: Trainable names → their specs (``python -m training train dd-ugm-k``).
TRAININGS = {"dd-ugm-k": training("kspace"), "dd-ugm-x": training("image")}
STORES = {name: learned.ModelStore(name, build_model, ncsnpp.NCSNpp) for name in TRAININGS}
