"""Filtered back-projection (parallel-beam CT): the analytic floor every CT method beats.

One stage: filter each view along the detector axis and back-project (see
:meth:`napari_unrollrecon.physics.ct.RadonOperator.fbp`). For views evenly covering 180° the
result is on the image's intensity scale; fewer views give streak artefacts, not a scale change.
"""

from __future__ import annotations

import torch

from napari_unrollrecon.methods.base import MethodSpec, Param, UpdateMaker
from napari_unrollrecon.physics.ct import FBP_FILTERS


def run(problem, params, cache=None, start=0):
    make = UpdateMaker(problem, params, total=1)
    with torch.no_grad():
        x = problem.operator.fbp(problem.y, filter=params["filter"])
    yield make(1, x, label=f"FBP ({params['filter']})")
    return make.result(SPEC.name, x, stages=1)


SPEC = MethodSpec(
    name="fbp",
    title="FBP",
    modalities=("ct",),
    params=(
        Param(
            "filter",
            "ramp",
            kind="choice",
            choices=FBP_FILTERS,
            label="Filter",
            help="Ramp is sharpest; Shepp-Logan, cosine and Hann trade resolution for less noise "
            "and fewer streaks.",
        ),
    ),
    run=run,
    description="Ramp-filtered back-projection of the sinogram, optionally windowed.",
    reference="A. C. Kak and M. Slaney, Principles of Computerized Tomographic Imaging, IEEE Press 1988, ch. 3.",
)
