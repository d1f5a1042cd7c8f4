"""Zero-filled reconstruction ``x = Aᴴ y`` (MRI, static and dynamic): the floor every method beats."""

from __future__ import annotations

import torch

from napari_unrollrecon.methods.base import MethodSpec, UpdateMaker


# The decorator (unlike a `with` block) restores grad mode around every yield, so a paused run
# never leaves autograd disabled in the consumer's thread.
@torch.no_grad()
def run(problem, params, cache=None, start=0):
    make = UpdateMaker(problem, params, total=1)
    x = problem.operator.AH(problem.y)
    yield make(1, x, label="zero-filled")
    return make.result(SPEC.name, x, stages=1)


SPEC = MethodSpec(
    name="zero-filled",
    title="Zero-filled (Aᴴy)",
    modalities=("mri", "dmri"),
    params=(),
    run=run,
    description="Inverse FFT of the zero-filled k-space; magnitude shown.",
)
