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


# --------------------------------------------------------------------------- lazy updates, one throttle
def _sampler_spec(steps: int):
    import torch

    from napari_unrollrecon.methods.base import MethodSpec, UpdateMaker

    def run_(problem, params, cache=None, start=0):
        make = UpdateMaker(problem, params, total=steps)
        x = problem.operator.AH(problem.y)
        for k in range(1, steps + 1):
            x = x * 0.999 + 0.001 * torch.rand_like(x.real)
            yield make(k, x)
        return make.result("lazy", x, stages=steps)

    return MethodSpec(name="lazy", title="lazy", modalities=("mri",), params=(), run=run_)


def test_a_1000_step_sampler_materialises_only_what_the_throttle_shows():
    import time

    from napari_unrollrecon.engine import phantoms, problems
    from napari_unrollrecon.engine.stream import Throttle
    from napari_unrollrecon.methods.base import Update
    from napari_unrollrecon.physics.masks import make_mask

    x = np.abs(phantoms.mri_phantom(64))
    problem = problems.mri_from_image(x, make_mask("radial", (64, 64), 0.3))
    rate = 10.0
    before = Update.materialised
    t0 = time.perf_counter()
    shown = 0
    gen = stream(_sampler_spec(1000), problem, reference=x, throttle=Throttle(max_rate=rate))
    while True:
        try:
            u = next(gen)
        except StopIteration:
            break
        if u.show:  # the consumer (dock, CLI) looks only at shown updates
            assert "psnr" in u.metrics and u.image.shape == (64, 64)
            shown += 1
        else:
            assert not u.metrics
    duration = time.perf_counter() - t0
    made = Update.materialised - before
    assert made == shown and made <= rate * duration + 1, (made, duration)


def test_run_without_a_consumer_materialises_no_update():
    from napari_unrollrecon.engine import phantoms, problems
    from napari_unrollrecon.methods.base import Update
    from napari_unrollrecon.physics.masks import make_mask

    x = np.abs(phantoms.mri_phantom(32))
    problem = problems.mri_from_image(x, make_mask("radial", (32, 32), 0.3))
    before = Update.materialised
    res = run(_sampler_spec(200), problem, reference=x)
    assert Update.materialised == before and "psnr" in res.metrics


def test_a_non_finite_stage_stops_the_run_naming_method_and_stage():
    import torch

    from napari_unrollrecon.engine import phantoms, problems
    from napari_unrollrecon.engine.stream import NonFiniteError
    from napari_unrollrecon.methods.base import MethodSpec, UpdateMaker
    from napari_unrollrecon.physics.masks import make_mask

    def run_(problem, params, cache=None, start=0):
        make = UpdateMaker(problem, params, total=5)
        x = problem.operator.AH(problem.y)
        for k in range(1, 6):
            x = x * (float("nan") if k == 3 else 1.0)
            yield make(k, x)
        return make.result("nan", x, stages=5)

    spec = MethodSpec(name="nan", title="Diverging", modalities=("mri",), params=(), run=run_)
    x = np.abs(phantoms.mri_phantom(32))
    problem = problems.mri_from_image(x, make_mask("radial", (32, 32), 0.3))
    with pytest.raises(NonFiniteError, match="Diverging produced NaN or infinite values at stage 3/5"):
        run(spec, problem)


@pytest.mark.parametrize("mask, match", [
    (np.full((8, 8), np.nan), "finite values in \\[0, 1\\]"),
    (-np.ones((8, 8)), "finite values in \\[0, 1\\]"),
    (5 * np.ones((8, 8)), "finite values in \\[0, 1\\]"),
    (np.zeros((8, 8)), "samples nothing"),
])
def test_the_mri_operator_refuses_meaningless_masks(mask, match):
    from napari_unrollrecon.physics.mri import MRIOperator

    with pytest.raises(ValueError, match=match):
        MRIOperator(mask)


@pytest.mark.parametrize("noise", [-1.0, float("nan"), float("inf")])
def test_problems_refuse_meaningless_noise(noise):
    from napari_unrollrecon.engine import problems
    from napari_unrollrecon.physics.masks import make_mask

    with pytest.raises(ValueError, match="noise must be a finite level"):
        problems.mri_from_image(np.ones((16, 16)), make_mask("radial", (16, 16), 0.3), noise=noise)


def test_real_data_cannot_be_used_as_kspace():
    from napari_unrollrecon.engine.pipeline import build_problem

    with pytest.raises(ValueError, match="k-space must be complex"):
        build_problem(np.ones((16, 16), np.float32), "kspace", "mri")
