"""Fixtures for the dock tests: a tiny registered method whose output is easy to predict."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from napari_unrollrecon.methods.base import MethodSpec, Param, UpdateMaker, resume_point

DUMMY = "dummy-stages"


def _dummy_run(problem, params, cache=None, start=0):
    """Stage k shows gain·(k/steps)·|Aᴴy| (+ offset from stage ``offset_from`` on); caches each
    stage so a re-run can resume from stage ``start``."""
    steps = int(params["steps"])
    make = UpdateMaker(problem, params, total=steps)
    base = problem.operator.fbp(problem.y) if problem.modality == "ct" else problem.operator.AH(problem.y)
    base = base.abs()
    first = 1
    if start > 1 and cache is not None and cache.key == DUMMY:
        first = resume_point(cache, DUMMY, start, "dummy")[0] + 1
    elif cache is not None:
        cache.reset(DUMMY)
        cache.resumed_from = 1
    for k in range(first, steps + 1):
        if params["fail_at"] and k == params["fail_at"]:
            raise RuntimeError(f"dummy failure at stage {k}")
        time.sleep(params["delay"])
        x = base * params["gain"] * k / steps + (params["offset"] if k >= 3 else 0.0)
        if cache is not None:
            cache.put(k, x)
        extras = {"map": (x * 10.0 ** k).cpu().numpy()} if params["extra"] else None  # a scale per stage
        yield make(k, x, label=f"dummy stage {k}/{steps}", extras=extras)
    return make.result(DUMMY, x, stages=steps)


SPEC = MethodSpec(
    name=DUMMY,
    title="Dummy stages",
    modalities=("mri", "dmri", "ct"),
    params=(
        Param("gain", 1.0, low=0.0, high=10.0, live=True, label="gain"),
        Param("offset", 0.0, low=0.0, high=10.0, live=True, stage=3, label="offset (stage ≥ 3)"),
        Param("steps", 5, kind="int", low=1, high=1000, label="steps"),
        Param("delay", 0.0, low=0.0, high=1.0, label="seconds per stage"),
        Param("fail_at", 0, kind="int", low=0, high=1000, label="raise at stage"),
        Param("weight", 0.01, low=1e-6, high=1.0, log=True, by_modality=(("ct", 1e-4),),
              label="weight (unused)", help="a modality-specific default, for the dock's tests"),
        Param("extra", False, kind="bool", label="stream an extra map 'map' (10^k × stage k)"),
        Param("ct_only", 0.0, label="a CT-only control", modalities=("ct",)),
    ),
    run=_dummy_run,
    resumable=True,
    description="Test method: scaled zero-filled image per stage.",
)

LEARNED = MethodSpec(
    name="dummy-learned",
    title="Dummy learned",
    modalities=("mri", "dmri", "ct"),
    params=(Param("weights", None, kind="path", label="weights"),),
    run=_dummy_run,
    learned=True,
)


@pytest.fixture
def dummy_method():
    from napari_unrollrecon.engine import registry

    registry.register(SPEC, replace=True)
    registry.register(LEARNED, replace=True)
    yield SPEC
    registry._REGISTRY.pop(DUMMY, None)
    registry._REGISTRY.pop("dummy-learned", None)


@pytest.fixture
def dock(make_napari_viewer, dummy_method):
    """A viewer with the Reconstruction dock (through the manifest) and the dummy methods."""
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    return viewer, widget


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture
def phantom():
    from napari_unrollrecon.engine.phantoms import mri_phantom

    return np.abs(mri_phantom(64)).astype(np.float32)


@pytest.fixture
def tick():
    """``tick(widget, methods)``: check exactly these methods in the dock's Compare list."""
    from qtpy.QtCore import Qt

    def tick(widget, methods):
        for i in range(widget.compare_list.count()):
            item = widget.compare_list.item(i)
            keep = item.data(Qt.ItemDataRole.UserRole) in methods
            item.setCheckState(Qt.CheckState.Checked if keep else Qt.CheckState.Unchecked)

    return tick
