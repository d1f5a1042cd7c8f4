"""FBP baseline driven through the engine like every other method."""

import numpy as np
import pytest
from skimage.data import shepp_logan_phantom
from skimage.transform import resize

from napari_unrollrecon.engine import problems
from napari_unrollrecon.engine.stream import run, stream
from napari_unrollrecon.methods import fbp
from napari_unrollrecon.physics.ct import FBP_FILTERS, RadonOperator


@pytest.fixture(scope="module")
def phantom():
    return resize(shepp_logan_phantom(), (96, 96), anti_aliasing=True).astype(np.float32)


def test_spec():
    spec = fbp.SPEC
    assert spec.name == "fbp" and spec.modalities == ("ct",)
    (param,) = spec.params
    assert param.name == "filter" and param.default == "ramp" and param.choices == FBP_FILTERS


def test_psnr_floor_and_more_views_help(phantom):
    # Measured at 96²: 19.6 dB (20 views), 26.8 (45), 28.9 (120); the floors leave ~1 dB.
    psnrs = {}
    for views, floor in ((20, 18.5), (45, 25.8), (120, 27.9)):
        problem = problems.ct_from_image(phantom, views)
        result = run(fbp.SPEC, problem, reference=phantom)
        assert result.image.shape == phantom.shape and result.stages == 1
        psnrs[views] = result.metrics["psnr"]
        assert psnrs[views] > floor, (views, psnrs[views])
    assert psnrs[20] < psnrs[45] < psnrs[120]


def test_one_update_with_residual(phantom):
    problem = problems.ct_from_image(phantom, 60)
    gen = stream(fbp.SPEC, problem, {"filter": "hann"}, reference=phantom)
    update = next(gen)
    assert (update.stage, update.total) == (1, 1)
    assert update.params["filter"] == "hann" and "psnr" in update.metrics
    # FBP is not a least-squares solution, but it explains most of the data.
    assert 0 < update.residual < 0.2
    with pytest.raises(StopIteration):
        next(gen)


def test_filters_differ_and_bad_filter(phantom):
    problem = problems.ct_from_image(phantom, 60)
    ramp = run(fbp.SPEC, problem, {"filter": "ramp"}).image
    hann = run(fbp.SPEC, problem, {"filter": "hann"}).image
    assert not np.allclose(ramp, hann)
    with pytest.raises(ValueError, match="filter"):
        run(fbp.SPEC, problem, {"filter": "hamming"})


def test_from_measured_sinogram(phantom):
    # A sinogram handed in as data gives the same reconstruction as the simulated one.
    sino = RadonOperator(96, n_views=90).A(np.ascontiguousarray(phantom)).numpy()
    problem = problems.ct_from_sinogram(sino)
    assert problem.image_shape == (96, 96) and problem.meta["views"] == 90
    measured = run(fbp.SPEC, problem, reference=phantom)
    simulated = run(fbp.SPEC, problems.ct_from_image(phantom, 90), reference=phantom)
    np.testing.assert_allclose(measured.image, simulated.image, atol=1e-5)


def test_rejects_mri_problem():
    mask = np.ones((8, 8))
    problem = problems.mri_from_image(np.ones((8, 8)), mask)
    with pytest.raises(ValueError, match="ct"):
        run(fbp.SPEC, problem)
