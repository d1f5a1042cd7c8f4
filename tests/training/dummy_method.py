"""A tiny learned MRI method for the training / weights tests: a residual CNN on Aᴴy.

It implements the whole learned-method contract (SPEC with a ``weights`` parameter whose ``run``
loads through the weights registry, and TRAINING) in a few lines, so the machinery can be tested
without any real network. Importable by torchrun workers through PYTHONPATH.
"""

from __future__ import annotations

import torch
from torch import nn

from napari_unrollrecon.methods.base import MethodSpec, UpdateMaker
from napari_unrollrecon.methods.learned import WEIGHTS_PARAM, TrainingSpec, sample_masks
from napari_unrollrecon.physics.fft import fft2c, ifft2c

NAME = "tiny-cnn"


class TinyCNN(nn.Module):
    def __init__(self, channels: int = 8, depth: int = 3):
        super().__init__()
        layers, c_in = [], 2
        for _ in range(depth - 1):
            layers += [nn.Conv2d(c_in, channels, 3, padding=1), nn.ReLU()]
            c_in = channels
        layers.append(nn.Conv2d(c_in, 2, 3, padding=1))
        self.body = nn.Sequential(*layers)
        self.loss_weight = 1.0  # read by loss() through the DDP wrapper

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = torch.view_as_real(x).permute(0, 3, 1, 2)
        out = r + self.body(r)
        return torch.view_as_complex(out.permute(0, 2, 3, 1).contiguous())


def build_model(config: dict) -> nn.Module:
    return TinyCNN(int(config.get("channels", 8)), int(config.get("depth", 3)))


def make_batch(targets: torch.Tensor, rng: torch.Generator, config: dict) -> dict:
    targets = targets.to(torch.complex64)
    draw = sample_masks(targets.shape[0], tuple(targets.shape[-2:]), config.get("masks", ["cartesian"]),
                        config.get("ratios", [0.3]), rng, device=targets.device, pool=4)
    x0 = ifft2c(draw.mask * fft2c(targets))
    return {"target": targets, "x0": x0, "ratio": draw.ratio}


def loss(model, batch):
    out = model(batch["x0"])
    value = (out - batch["target"]).abs().mean() * model.loss_weight
    return value, {"l1": float(value.detach())}


def predict(model, batch):
    return model(batch["x0"])


TRAINING = TrainingSpec(build_model=build_model, make_batch=make_batch, loss=loss, predict=predict,
                        configs={"paper": {"channels": 16, "depth": 5}, "cpu": {"channels": 8, "depth": 3}})


def run(problem, params, cache=None, start=0):
    from napari_unrollrecon.engine import weights

    model, _ = weights.load(NAME, params.get("weights") or None, device=problem.device)
    make = UpdateMaker(problem, params, total=1)
    with torch.no_grad():  # trained on images with max|x| = 1: work on that scale
        x = model(problem.operator.AH(problem.y)[None] / problem.scale)[0] * problem.scale
    yield make(1, x, label="tiny-cnn")
    return make.result(NAME, x, stages=1)


SPEC = MethodSpec(name=NAME, title="Tiny CNN (test)", modalities=("mri",), params=(WEIGHTS_PARAM,), run=run,
                  learned=True, description="test-only residual CNN")
