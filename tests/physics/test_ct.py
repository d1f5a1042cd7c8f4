"""Parallel-beam CT operator: agreement with skimage, exact adjoint, FBP scale, backends, errors."""

import numpy as np
import pytest
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from napari_unrollrecon.physics import ct
from napari_unrollrecon.physics.ct import (
    FBP_FILTERS,
    RadonOperator,
    default_n_detectors,
    sparse_view_angles,
)

BACKENDS = ["sparse", "grid"]
# Views with and without +90° partners (the sparse backend pairs those), beyond 360° and below 0.
THETA = np.array([0.0, 13.7, 45.0, 90.0, 101.3, 179.5, 233.0, 103.7, 135.0, 323.0, -37.0, 400.0])


@pytest.fixture(scope="module")
def phantom64():
    return resize(shepp_logan_phantom(), (64, 64), anti_aliasing=True)


@pytest.fixture(scope="module")
def phantom128():
    return resize(shepp_logan_phantom(), (128, 128), anti_aliasing=True)


def rel(a, b):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return float(np.linalg.norm(a - b) / np.linalg.norm(b))


def psnr(x, ref):
    mse = np.mean((np.asarray(x, dtype=np.float64) - ref) ** 2)
    return 10 * np.log10((ref.max() - ref.min()) ** 2 / mse)


# --------------------------------------------------------------------------- forward vs skimage
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size", [64, 33])
def test_radon_matches_skimage(size, backend):
    # The projector samples the same rays at the same points with the same bilinear weights as
    # skimage.transform.radon(circle=False), so only rounding may differ: 1e-10 in float64 and
    # 1e-5 in float32 (relative, ~300 float32 terms summed per ray; the sparse backend, whose
    # positions are computed in float64, measures 1.5e-7).
    img = np.random.default_rng(0).random((size, size))
    op = RadonOperator(size, angles=THETA, backend=backend)
    assert op.backend == backend
    ref = radon(img, THETA, circle=False).T  # skimage: (detectors, views)
    assert op.n_detectors == ref.shape[1] == default_n_detectors(size)
    assert rel(op.A(torch.as_tensor(img)).numpy(), ref) < 1e-10
    assert rel(op.A(torch.as_tensor(img, dtype=torch.float32)).numpy(), ref) < 1e-5


@pytest.mark.parametrize("name", FBP_FILTERS)
def test_fbp_matches_iradon(phantom64, name):
    theta = np.arange(90) * 2.0
    sino = radon(phantom64, theta, circle=False)
    ref = iradon(sino, theta, filter_name=name, circle=False)
    out = RadonOperator(64, n_views=90).fbp(torch.as_tensor(sino.T), filter=name).numpy()
    # Same filter and the same linear interpolation: inside the inscribed circle they agree to
    # rounding. Outside, pixels whose projection falls past the last detector bin differ by
    # convention (iradon: zero; here: linear ramp to a zero bin), which touches a few corners.
    yy, xx = np.mgrid[:64, :64] - 32
    disk = xx**2 + yy**2 <= 32**2
    assert np.abs(out - ref)[disk].max() < 1e-9 * np.abs(ref).max()
    assert rel(out, ref) < 1e-3


def test_fbp_shepp_logan_psnr(phantom128):
    # Measured: 29.9 dB (ramp), 28.6 (shepp-logan), 26.5 (cosine), 24.8 (hann) at 180 views,
    # identical to skimage's iradon. Floors sit ~1 dB below; a wrong scale (e.g. a factor of 2)
    # or a misplaced centre drops PSNR far below them.
    op = RadonOperator(128, n_views=180)
    y = op.A(torch.as_tensor(phantom128, dtype=torch.float32))
    floors = {"ramp": 29.0, "shepp-logan": 27.5, "cosine": 25.5, "hann": 23.8}
    for name, floor in floors.items():
        assert psnr(op.fbp(y, name).numpy(), phantom128) > floor, name
    # Intensities are reproduced, not just the shape: mean over the phantom within 2 %.
    x = op.fbp(y).numpy()
    inside = phantom128 > 0.1
    assert abs(x[inside].mean() / phantom128[inside].mean() - 1) < 0.02


# --------------------------------------------------------------------------- adjoint and autograd
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("size, angles", [(48, np.linspace(3.0, 171.0, 17)),
                                          (47, np.arange(0.0, 180.0, 10.0))])
def test_adjoint_inner_product(size, angles, backend):
    # A short detector (75 < ceil(√2·48) bins) cuts rays; the second geometry is all +90° pairs.
    op = RadonOperator(size, angles=angles, n_detectors=75, backend=backend)
    g = torch.Generator().manual_seed(0)
    for dtype, tol in ((torch.float32, 1e-4), (torch.float64, 1e-10)):
        x = torch.randn(2, size, size, generator=g, dtype=torch.float64).to(dtype)
        y = torch.randn(2, len(angles), 75, generator=g, dtype=torch.float64).to(dtype)
        lhs = float((op.A(x).double() * y.double()).sum())
        rhs = float((x.double() * op.AH(y).double()).sum())
        assert abs(lhs - rhs) / abs(lhs) < tol, dtype


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradients_are_exact(backend):
    # 0° and 90° are a pair for the sparse backend, 30° and 150° are not.
    op = RadonOperator(8, angles=[0.0, 30.0, 90.0, 150.0], n_detectors=13, backend=backend)
    x = torch.rand(8, 8, dtype=torch.float64, requires_grad=True)
    y = torch.rand(4, 13, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(op.A, (x,))
    assert torch.autograd.gradcheck(op.AH, (y,))
    assert torch.autograd.gradgradcheck(op.A, (x,))


@pytest.mark.parametrize("backend", BACKENDS)
def test_norm_matches_dense_svd(backend):
    op = RadonOperator(12, n_views=8, backend=backend)
    basis = torch.eye(144, dtype=torch.float64).reshape(144, 12, 12)
    matrix = op.A(basis).reshape(144, -1).T.numpy()
    sigma = np.linalg.svd(matrix, compute_uv=False)[0]
    assert abs(op.norm() - sigma) / sigma < 1e-3
    assert op.norm() == op.norm()  # cached


# --------------------------------------------------------------------------- sparse backend
@pytest.mark.parametrize("size, n_det", [(40, None), (41, None), (40, 45), (9, 31)])
def test_sparse_equals_grid(size, n_det):
    # Same model, independently computed weights: float64 agreement to rounding, in both
    # directions, with paired and unpaired views, odd and even sizes, short and long detectors.
    kw = dict(angles=THETA, n_detectors=n_det)
    sparse, grid = RadonOperator(size, **kw), RadonOperator(size, backend="grid", **kw)
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, size, size, generator=g, dtype=torch.float64)
    y = torch.randn(3, len(THETA), sparse.n_detectors, generator=g, dtype=torch.float64)
    assert rel(sparse.A(x), grid.A(x)) < 1e-12
    assert rel(sparse.AH(y), grid.AH(y)) < 1e-12


def test_pair_views():
    base, partner, single = ct._pair_views(THETA)
    assert sorted(np.concatenate([base, partner, single]).tolist()) == list(range(len(THETA)))
    gap = np.mod(THETA[partner] - THETA[base], 360.0)
    np.testing.assert_allclose(gap, 90.0)
    assert len(base) == 4  # 0/90, 13.7/103.7, 45/135, 233/323 (or its alias -37)
    # 180 views at 1°: every view has a partner; 7 sparse views of 180: none has.
    base, partner, single = ct._pair_views(np.arange(180.0))
    assert len(base) == 90 and len(single) == 0
    assert len(ct._pair_views(sparse_view_angles(7, 180))[0]) == 0


def test_sparse_storage_and_cache():
    op = RadonOperator(64, n_views=60)
    mats = op._matrices(torch.float32)
    # All 60 views pair up, so one matrix of 30 views serves both (A and Aᵀ share the entries).
    assert mats.alone is None and mats.pair[0].shape == (30 * op.n_detectors, 65**2)
    assert mats.pair[1].shape == (65**2, 30 * op.n_detectors)
    assert mats.pair[0]._nnz() == mats.pair[1]._nnz() == mats.nnz
    assert mats.pair[0].crow_indices().dtype == torch.int32  # MKL's fast path
    # ~2.2 non-zeros per pixel and view; the memory estimate that picks the backend is an upper bound.
    assert 2.0 < mats.nnz / (30 * 64**2) < ct._NNZ_PER_PIXEL_VIEW
    assert mats.nbytes <= op.sparse_bytes_estimate()
    # Shared by operators of the same geometry, per dtype.
    assert RadonOperator(64, n_views=60)._matrices(torch.float32) is mats
    assert op._matrices(torch.float64) is not mats
    assert op._matrices(torch.float64).pair[0].values().dtype == torch.float64
    assert op.to("cpu")._matrices(torch.float32) is mats


def test_entries_grow_and_trim():
    # The build writes entries into one buffer sized by an estimate: too small grows, too large
    # is trimmed, and the content is the chunks in order either way.
    chunks = [torch.arange(5), torch.arange(7) + 100, torch.arange(3) + 200]
    for capacity in (2, 100):
        entries = ct._Entries(capacity, torch.float64, torch.device("cpu"))
        for c in chunks:
            entries.append(c, c.double() / 2)
        cols, vals = entries.result()
        expect = torch.cat(chunks)
        assert cols.dtype == torch.int32 and torch.equal(cols.long(), expect)
        assert torch.equal(vals, expect.double() / 2)
        assert cols.untyped_storage().nbytes() < 2 * 4 * len(expect)  # no slack kept


def test_backend_choice(monkeypatch):
    assert RadonOperator(16, n_views=4).backend == "sparse"
    monkeypatch.setattr(ct, "SPARSE_MAX_BYTES", 1000)
    op = RadonOperator(16, n_views=4)
    assert op.backend == "grid" and op.to("cpu").backend == "grid"
    assert RadonOperator(16, n_views=4, backend="sparse").backend == "sparse"
    with pytest.raises(ValueError, match="backend"):
        RadonOperator(16, n_views=4, backend="fast")


# --------------------------------------------------------------------------- geometry
def test_sparse_view_angles():
    angles = sparse_view_angles(60, full_views=180)
    np.testing.assert_allclose(angles, np.arange(0, 180, 3.0))
    seven = sparse_view_angles(7, full_views=180, arc=180.0)
    full = np.arange(180) * 1.0
    assert np.all(np.isin(seven, full)) and len(np.unique(seven)) == 7
    assert np.all(np.abs(np.diff(seven) - 180 / 7) <= 1)  # as even as the full grid allows
    np.testing.assert_allclose(sparse_view_angles(5, 5, arc=360.0), [0, 72, 144, 216, 288])
    op = RadonOperator(32, n_views=23, full_views=360)
    np.testing.assert_allclose(op.angles, sparse_view_angles(23, 360))
    assert op.n_views == 23
    with pytest.raises(ValueError, match="n_views"):
        sparse_view_angles(200, full_views=180)


def test_default_angles_and_sizes():
    op = RadonOperator(64, n_views=4)
    np.testing.assert_allclose(op.angles, [0, 45, 90, 135])
    np.testing.assert_allclose(RadonOperator(64, n_views=4, arc=120).angles, [0, 30, 60, 90])
    assert op.sinogram_shape == (4, default_n_detectors(64)) == (4, 91)
    for n in [2, 3, 64, 65, 128, 255, 256, 512, 777]:
        assert RadonOperator.image_size_for(default_n_detectors(n)) == n


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("views", [9, 12])  # 12 views: all in +90° pairs, 9: none
def test_batching_matches_single(backend, views):
    op = RadonOperator(24, n_views=views, backend=backend)
    g = torch.Generator().manual_seed(3)
    x = torch.rand(2, 3, 24, 24, generator=g)
    y = op.A(x)
    assert y.shape == (2, 3, views, op.n_detectors)
    torch.testing.assert_close(y[1, 2], op.A(x[1, 2]))
    assert op.AH(y).shape == x.shape
    torch.testing.assert_close(op.AH(y)[0, 1], op.AH(y[0, 1]))
    torch.testing.assert_close(op.fbp(y, "hann")[1, 0], op.fbp(y[1, 0], "hann"))


# --------------------------------------------------------------------------- devices and errors
def test_device_honoured():
    op = RadonOperator(16, n_views=6, device="cpu")
    assert op.device == torch.device("cpu")
    y = op.A(torch.rand(16, 16))
    assert y.device == op.device
    moved = op.to("cpu")
    assert moved.device == torch.device("cpu") and moved.n_views == 6
    np.testing.assert_array_equal(moved.angles, op.angles)
    # A tensor on another device is refused with a message naming both devices.
    with pytest.raises(ValueError, match="meta"):
        op.A(torch.empty(16, 16, device="meta"))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
@pytest.mark.parametrize("backend", BACKENDS)
def test_cuda_matches_cpu(backend):
    x = torch.rand(2, 32, 32)
    cpu = RadonOperator(32, n_views=10, backend=backend)
    gpu = cpu.to("cuda")
    y = gpu.A(x.cuda())
    assert y.device.type == "cuda" and gpu.backend == backend
    torch.testing.assert_close(y.cpu(), cpu.A(x), rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(gpu.AH(y).cpu(), cpu.AH(y.cpu()), rtol=1e-4, atol=1e-3)
    torch.testing.assert_close(gpu.fbp(y).cpu(), cpu.fbp(cpu.A(x)), rtol=1e-4, atol=1e-4)
    xg = x.cuda().requires_grad_()
    (gpu.A(xg) ** 2).sum().backward()
    torch.testing.assert_close(xg.grad.cpu(), 2 * cpu.AH(cpu.A(x)), rtol=1e-4, atol=1e-2)


def test_errors():
    op = RadonOperator(16, n_views=6)
    with pytest.raises(ValueError, match="floating-point"):
        op.A(torch.ones(16, 16, dtype=torch.int64))
    with pytest.raises(ValueError, match="floating-point"):
        op.A(torch.ones(16, 16, dtype=torch.complex64))
    with pytest.raises(ValueError, match="shape"):
        op.A(torch.ones(16, 15))
    with pytest.raises(ValueError, match="shape"):
        op.AH(torch.ones(6, 16))
    with pytest.raises(ValueError, match="filter"):
        op.fbp(torch.ones(6, op.n_detectors), filter="hamming")
    with pytest.raises(ValueError, match="n_views"):
        RadonOperator(16)
    with pytest.raises(ValueError, match="disagrees"):
        RadonOperator(16, n_views=3, angles=[0.0, 90.0])
    with pytest.raises(ValueError, match="image_size"):
        RadonOperator(1, n_views=3)
