import numpy as np
import pytest

from napari_unrollrecon.engine import phantoms, problems, registry
from napari_unrollrecon.engine.stream import run, stream
from napari_unrollrecon.physics.masks import make_mask


@pytest.fixture(scope="module")
def problem():
    x = np.abs(phantoms.mri_phantom(32))
    return x, problems.mri_from_image(x, make_mask("radial", (32, 32), 0.4))


def test_metrics_only_with_reference(problem):
    x, p = problem
    assert next(stream(registry.get("tv"), p, {"iterations": 3})).metrics == {}
    u = next(stream(registry.get("tv"), p, {"iterations": 3}, reference=x))
    assert set(u.metrics) == {"psnr", "ssim", "nmse"}


def test_ssim_every_skips_intermediate_ssim(problem):
    x, p = problem
    ups = list(stream(registry.get("tv"), p, {"iterations": 6}, reference=x, ssim_every=3))
    assert ["ssim" in u.metrics for u in ups] == [False, False, True, False, False, True]


def test_run_returns_result_with_metrics_and_on_update_changes(problem):
    x, p = problem
    seen = []

    def hook(u):
        seen.append(u.params["lam"])
        return {"lam": 0.05} if u.stage == 2 else None

    res = run(registry.get("tv"), p, {"iterations": 4}, reference=x, on_update=hook)
    assert seen[:2] == [0.01, 0.01] and seen[2:] == [0.05, 0.05]
    assert res.params["lam"] == 0.05 and res.metrics["psnr"] > 0 and res.seconds > 0


def test_registry():
    assert {"zero-filled", "fbp", "tv", "l1-wavelet"} <= set(registry.names())
    with pytest.raises(KeyError, match="unknown method 'magic'"):
        registry.get("magic")
    assert [s.name for s in registry.for_modality("ct")] == ["fbp", "tv", "l1-wavelet", "gdunet"]
