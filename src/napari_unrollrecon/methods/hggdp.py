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
each followed by hard data consistency on every copy; it ends on the noise-free mean.

Deviations from the authors' code: Gaussian instead of uniform perturbation noise (the method as
described; the uniform draw is a quirk of their code); images are divided by the peak of the
zero-filled image before sampling and multiplied back after.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import MethodSpec, Param, UpdateMaker
from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.priors import ncsn
from napari_unrollrecon.priors.channels import from_channels, to_channels
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
}

#: Schedules: the paper's annealed Langevin and our fast predictor-corrector default.
SCHEDULES = {
    "paper": {"levels": 10, "steps": 80, "sigma_start": 1.0, "views": 3, "step_size": 1.5e-6,
              "corrector": "gradient", "perturb": 1.0, "predictor": "none", "init": "random"},
    "fast": {"levels": 40, "steps": 1, "sigma_start": 0.3, "views": 1, "step_size": 0.16,
             "corrector": "langevin", "perturb": 0.0, "predictor": "reverse_diffusion",
             "init": "zero-filled"},
}


# --------------------------------------------------------------------------- embedding
def to_stack(z: torch.Tensor, copies: int = COPIES) -> torch.Tensor:
    """Complex (B, H, W) → real (B, 2·copies, H, W): copies of (Re, Im)."""
    return to_channels(z, copies)


from_stack = from_channels  # (B, 2·copies, H, W) → complex (B, copies, H, W)


def consistency(x: torch.Tensor, y: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Hard k-space consistency on every copy: k = M·y + (1 − M)·F x."""
    z = from_stack(x)
    k = fft2c(z)
    k = mask[:, None] * y[:, None] + (1 - mask[:, None]) * k
    z = ifft2c(k)
    return torch.stack([z.real, z.imag], 2).flatten(1, 2)


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
    sigma = batch["sigma"].view(-1, 1, 1, 1)
    s = model(batch["x"] + sigma * batch["z"], batch["sigma"])
    per = 0.5 * (sigma * s + batch["z"]).pow(2).flatten(1).mean(1)
    return per.mean(), {"dsm": float(per.detach().mean())}


#: The short reconstruction validation runs (fast schedule, 20 levels from σ 0.3).
VALIDATION_SCHEDULE = {**SCHEDULES["fast"], "levels": 24}


@torch.no_grad()
def predict(model, batch: dict) -> torch.Tensor:
    gen = torch.Generator(device=batch["y"].device).manual_seed(batch["seed"])
    x = None
    for _level, _step, x, _sigma in sample(model, batch["y"], batch["mask"], VALIDATION_SCHEDULE, gen):
        pass
    return x


TRAINING = learned.TrainingSpec(build_model=build_model, make_batch=make_batch, loss=loss, predict=predict,
                                configs=CONFIGS)
STORE = learned.ModelStore(NAME, build_model, ncsn.NCSNRefineNet)


# --------------------------------------------------------------------------- sampling
def _initial(y, mask, schedule, copies, sigma0, gen):
    zf = ifft2c(y)
    x = to_stack(zf, copies)
    if schedule["init"] == "random":  # the authors start from uniform noise in [-1, 1]
        x = torch.rand(x.shape, generator=gen, device=x.device) * 2 - 1
        return consistency(x, y, mask)
    return consistency(x + sigma0 * noise(x.shape, gen, x), y, mask)


def sample(model, y: torch.Tensor, mask: torch.Tensor, schedule: dict, gen: torch.Generator, live=None):
    """Yield (level, step, complex mean image (B, H, W), σ) after every step, on normalised data.

    ``y``, ``mask``: (B, H, W) centred k-space of images with peak ≈ 1, and the mask. ``schedule``
    keys: levels, steps, sigma_start, views, step_size, predictor, corrector, init, optional
    sigma_stop. ``live()`` (optional) returns the current schedule for live changes.
    """
    sde = VESDE(model.sigma_min, model.sigma_max, schedule["levels"])
    ladder = S.pc_ladder(sde, schedule["sigma_start"])
    copies = model.channels // 2
    x = _initial(y, mask, schedule, copies, ladder[0][0], gen)
    for level, (sigma, sigma_next) in enumerate(ladder):
        sch = live() if live else schedule
        if sigma < sch.get("sigma_stop", 0.0):
            break
        score = S.averaged_score(model, int(sch["views"]), gen, perturb=float(sch.get("perturb", 0.0)))
        corrector = S.get(S.CORRECTORS, sch["corrector"])
        predictor = S.get(S.PREDICTORS, sch["predictor"])
        opts = {"snr": sch["step_size"], "eps": sch["step_size"], "sigma_last": model.sigma_min}
        for j in range(int(sch["steps"])):
            x, x_mean = corrector(x, sigma, score, gen, **opts)
            x = consistency(x, y, mask)
            yield level, j, from_stack(consistency(x_mean, y, mask)).mean(1), sigma
        if sch["predictor"] != "none":
            last = sigma_next == 0.0
            x, x_mean = predictor(x, sigma, score, gen, sigma_next=sigma_next if not last else 0.0,
                                  add_noise=not last)
            x = consistency(x_mean if last else x, y, mask)
            yield level, int(sch["steps"]), from_stack(consistency(x_mean, y, mask)).mean(1), sigma


# --------------------------------------------------------------------------- streamed run
def run(problem, params, cache=None, start=0):
    raise NotImplementedError("HGGDP reconstruction is being built")


SPEC = MethodSpec(
    name=NAME,
    title="HGGDP (score-based, annealed Langevin)",
    modalities=("mri",),
    params=(learned.WEIGHTS_PARAM,),
    run=run,
    learned=True,
    description="Score-based reconstruction with a noise-conditional score network on stacked copies of the image.",
    reference="Q. Liu et al., 'Highly undersampled magnetic resonance imaging reconstruction using "
              "autoencoding priors' / HGGDP, https://github.com/yqx7150/HGGDP",
)
