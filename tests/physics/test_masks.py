"""Sampling masks: ratios, structure, determinism, centring detection, file round trips, errors."""

import time

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import tifffile
import torch

from napari_unrollrecon.physics.fft import mask_to_centred, mask_to_uncentred
from napari_unrollrecon.engine.io import read_mask as load_mask
from napari_unrollrecon.physics.masks import (
    FAMILY_OF_KIND,
    is_line_mask,
    mask_family,
    KT_KINDS,
    MASK_KINDS,
    MaskError,
    check_mask_shape,
    detect_centring,
    make_mask,
    mask_preview_png,
    realised_ratio,
    save_mask,
)
from napari_unrollrecon.physics.mri import MRIOperator

RATIOS = (0.05, 0.1, 0.2, 0.3, 0.4, 0.5)
SHAPES = ((256, 256), (192, 192), (255, 191))
ONE_D = ("cartesian", "equispaced")
POINT_KINDS = ("random", "gaussian", "poisson")


def _rho(shape):
    h, w = shape
    y = (np.arange(h) - h // 2)[:, None] / (h / 2)
    x = (np.arange(w) - w // 2)[None, :] / (w / 2)
    return np.sqrt(y**2 + x**2)


# --------------------------------------------------------------------------- ratios
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_ratio_within_one_point(kind, shape):
    for ratio in RATIOS:
        mask = make_mask(kind, shape, ratio, seed=3)
        assert mask.shape == shape and mask.dtype == np.float32
        assert set(np.unique(mask)) <= {0.0, 1.0}
        got = realised_ratio(mask)
        assert got == pytest.approx(mask.mean())
        assert abs(got - ratio) <= 0.01, f"{kind} {shape} asked {ratio}, got {got:.4f}"


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_high_ratios_and_full_sampling(kind):
    for ratio in (0.75, 0.9):
        got = realised_ratio(make_mask(kind, (96, 80), ratio, seed=1))
        assert abs(got - ratio) <= 0.01, f"{kind} asked {ratio}, got {got:.4f}"
    assert np.all(make_mask(kind, (33, 40), 1.0) == 1)


@pytest.mark.parametrize("kind", KT_KINDS)
def test_kt_frames_reach_ratio_and_differ(kind):
    mask = make_mask(kind, (16, 192, 192), 0.15, seed=2)
    assert mask.shape == (16, 192, 192) and mask.dtype == np.float32
    for t, frame in enumerate(mask):
        assert abs(realised_ratio(frame) - 0.15) <= 0.01, f"frame {t}: {realised_ratio(frame):.4f}"
        assert frame[96, 96] == 1
    for t in range(15):
        assert not np.array_equal(mask[t], mask[t + 1]), f"{kind}: frames {t} and {t + 1} are equal"
    # frame 0 of a k-t mask is the 2D mask of the same seed
    np.testing.assert_array_equal(mask[0], make_mask(kind, (192, 192), 0.15, seed=2))


# --------------------------------------------------------------------------- structure
@pytest.mark.parametrize("kind", MASK_KINDS)
@pytest.mark.parametrize("shape", ((256, 256), (255, 191)), ids=("256", "255x191"))
def test_dc_is_sampled(kind, shape):
    for ratio in (0.05, 0.3):
        assert make_mask(kind, shape, ratio)[shape[0] // 2, shape[1] // 2] == 1


@pytest.mark.parametrize("kind", ONE_D)
def test_centre_band_fully_sampled_1d(kind):
    mask = make_mask(kind, (128, 200), 0.25, center_fraction=0.1)
    band = np.arange(100 - 10, 100 + 10)
    assert np.all(mask[:, band] == 1)


@pytest.mark.parametrize("kind", POINT_KINDS + ("radial",))
def test_centre_disc_fully_sampled_2d(kind):
    shape = (160, 192)
    mask = make_mask(kind, shape, 0.2, center_fraction=0.15)
    assert np.all(mask[_rho(shape) <= 0.15] == 1)


@pytest.mark.parametrize("kind", ONE_D)
def test_one_d_kinds_sample_whole_columns(kind):
    for shape in ((256, 256), (3, 192, 192), (255, 191)):
        mask = make_mask(kind, shape, 0.2, seed=5)
        np.testing.assert_array_equal(mask, np.broadcast_to(mask[..., :1, :], mask.shape))
        lines = mask[..., 0, :].sum(axis=-1)
        assert np.all(np.abs(lines - 0.2 * shape[-1]) <= 0.01 * shape[-1] + 0.5)


def test_cartesian_density_decays_from_the_centre():
    w = 256
    cols = np.stack([make_mask("cartesian", (8, w), 0.2, seed=s)[0] for s in range(40)]).mean(0)
    dist = np.abs(np.arange(w) - w // 2)
    inner = cols[(dist > 15) & (dist < 48)].mean()
    outer = cols[dist > 96].mean()
    assert inner > 2 * outer


def test_equispaced_gaps_differ_by_at_most_one():
    mask = make_mask("equispaced", (64, 256), 0.2, seed=4)[0]
    cols = np.flatnonzero(mask)
    runs = np.split(cols, np.flatnonzero(np.diff(cols) > 1) + 1)
    acs = next(r for r in runs if 128 in r)
    for side in (cols[cols < acs[0]], cols[cols > acs[-1]]):
        gaps = np.diff(side)
        assert gaps.max() - gaps.min() <= 1, gaps


def test_radial_is_point_symmetric_and_dense_at_centre():
    mask = make_mask("radial", (256, 256), 0.2, seed=7)
    inner = mask[1:, 1:]  # drop the row/column without a mirror partner
    np.testing.assert_array_equal(inner, inner[::-1, ::-1])
    rho = _rho((256, 256))
    assert mask[rho < 0.1].mean() > 0.9
    assert mask[rho > 0.8].mean() < 0.2


@pytest.mark.parametrize("kind", ("gaussian", "poisson"))
def test_variable_density(kind):
    shape = (256, 256)
    mask = make_mask(kind, shape, 0.15, seed=1)
    rho = _rho(shape)
    assert mask[(rho > 0.15) & (rho < 0.4)].mean() > 1.5 * mask[rho > 0.8].mean()


def test_poisson_points_keep_their_distance():
    shape = (256, 256)
    mask = make_mask("poisson", shape, 0.1, seed=6).astype(bool)
    periphery = mask & (_rho(shape) > 0.5)
    assert not _has_neighbours(periphery)
    # a uniform random mask of the same ratio does have neighbours: the check can fail
    rand = make_mask("random", shape, 0.1, seed=6).astype(bool) & (_rho(shape) > 0.5)
    assert _has_neighbours(rand)


def _has_neighbours(m):
    """Whether any two True pixels touch (8-neighbourhood)."""
    pairs = (m[:, 1:] & m[:, :-1], m[1:] & m[:-1], m[1:, 1:] & m[:-1, :-1], m[1:, :-1] & m[:-1, 1:])
    return any(p.any() for p in pairs)


def test_poisson_is_fast():
    make_mask("poisson", (64, 64), 0.2)  # warm imports
    times = []
    for seed in (1, 2):
        start = time.perf_counter()
        make_mask("poisson", (256, 256), 0.25, seed=seed)
        times.append(time.perf_counter() - start)
    assert min(times) < 1.0, times


# --------------------------------------------------------------------------- seeds
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_deterministic_per_seed_and_different_across_seeds(kind):
    a = make_mask(kind, (128, 128), 0.25, seed=11)
    b = make_mask(kind, (128, 128), 0.25, seed=11)
    c = make_mask(kind, (128, 128), 0.25, seed=12)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# --------------------------------------------------------------------------- centring
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_detect_centring_of_generated_masks(kind):
    for shape in ((256, 256), (255, 191), (4, 96, 96)):
        for ratio in (0.1, 0.4):
            mask = make_mask(kind, shape, ratio, seed=1)
            assert detect_centring(mask) == "centred"
            assert detect_centring(mask_to_uncentred(mask)) == "uncentred"
            np.testing.assert_array_equal(mask_to_centred(mask_to_uncentred(mask)), mask)


@pytest.mark.data
def test_detect_centring_on_published_masks(data_root):
    cgpd = data_root / "CGPD-CSNet/sampling_matrix/Cartesian/mask_10.mat"
    raw = scipy.io.loadmat(cgpd)["mask_matrix"]
    assert detect_centring(raw) == "uncentred"
    mask, info = load_mask(cgpd)
    assert info["assumed"] == "uncentred" and info["detected"] and info["key"] == "mask_matrix"
    assert "uncentred" in info["message"] and "shifted to centre" in info["message"]
    np.testing.assert_array_equal(mask, np.fft.fftshift(raw).astype(np.float32))
    assert detect_centring(mask) == "centred"

    hggdp = data_root / "HGGDP/hggdp_rec/mask/mask_cart_010.mat"
    raw = scipy.io.loadmat(hggdp)["mask_cart_010"]
    assert detect_centring(raw) == "centred"
    mask, info = load_mask(hggdp)
    assert info["assumed"] == "centred" and info["key"] == "mask_cart_010"
    np.testing.assert_array_equal(mask, raw)
    assert info["ratio"] == pytest.approx(raw.mean())


@pytest.mark.data
@pytest.mark.parametrize(
    "rel, key",
    [
        ("mask_Radial/radial10.mat", "mask"),
        ("mask_acs/mask_acs20.mat", "mask_acs"),
        ("mask_Poisson/Poisson192_p1_r10.mat", "mask"),
    ],
)
def test_dd_ugm_masks_are_centred(data_root, rel, key):
    path = data_root / "DD-UGM/mask" / rel
    raw = scipy.io.loadmat(path)[key]
    mask, info = load_mask(path)
    assert info["assumed"] == "centred" and info["detected"] and info["key"] == key
    if raw.ndim == 3:  # stored H x W x T
        assert mask.shape == (raw.shape[2], *raw.shape[:2])
        np.testing.assert_array_equal(mask[3], raw[..., 3])
    assert detect_centring(mask_to_uncentred(mask)) == "uncentred"


@pytest.mark.data
def test_ambiguous_equispaced_k_t_mask_is_reported(data_root):
    mask, info = load_mask(data_root / "DD-UGM/mask/mask_Rn/mask_R4.mat")
    assert mask.shape == (16, 192, 192)
    assert info["assumed"] == "centred" and "cannot be told" in info["message"]
    assert info["ratio"] == pytest.approx(0.25)


# --------------------------------------------------------------------------- files
@pytest.mark.parametrize("suffix", (".npy", ".mat"))
@pytest.mark.parametrize("shape", ((96, 80), (5, 64, 48)), ids=("2d", "kt"))
@pytest.mark.parametrize("uncentred", (False, True), ids=("centred", "uncentred"))
def test_save_load_round_trip(tmp_path, suffix, shape, uncentred):
    mask = make_mask("cartesian", shape, 0.25, seed=9)
    path = tmp_path / f"m{suffix}"
    save_mask(path, mask, uncentred=uncentred)
    raw = np.load(path) if suffix == ".npy" else scipy.io.loadmat(path)["mask_matrix"]
    if suffix == ".mat" and raw.ndim == 3:
        raw = np.moveaxis(raw, -1, 0)  # MATLAB layout H x W x T
    expected_raw = mask_to_uncentred(mask) if uncentred else mask
    np.testing.assert_array_equal(raw, expected_raw)
    loaded, info = load_mask(path)
    np.testing.assert_array_equal(loaded, mask)
    assert loaded.dtype == np.float32
    assert info["assumed"] == ("uncentred" if uncentred else "centred") and info["detected"]
    assert info["ratio"] == pytest.approx(realised_ratio(mask))


def test_explicit_centring_overrides_detection(tmp_path):
    mask = make_mask("radial", (64, 64), 0.2)
    save_mask(tmp_path / "m.npy", mask)
    as_is, info = load_mask(tmp_path / "m.npy", centred=True)
    np.testing.assert_array_equal(as_is, mask)
    assert info["detected"] is False and "caller" in info["message"]
    shifted, info = load_mask(tmp_path / "m.npy", centred=False)
    np.testing.assert_array_equal(shifted, mask_to_centred(mask))
    assert info["assumed"] == "uncentred"


def _write_mat73(path, variables):
    """An HDF5 file laid out like MATLAB v7.3 (128-byte MATLAB header, arrays transposed)."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, value in variables.items():
            ds = f.create_dataset(name, data=np.asarray(value).T)
            ds.attrs["MATLAB_class"] = np.bytes_("double")  # as MATLAB writes it
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created by a test. HDF5 schema 1.00 ."
    header = header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM"
    with open(path, "r+b") as f:
        f.write(header)


def test_mat_v73_is_read_with_h5py_and_transposed(tmp_path):
    mask = make_mask("gaussian", (48, 64), 0.3, seed=2)
    path = tmp_path / "v73.mat"
    _write_mat73(path, {"mask": mask_to_uncentred(mask)})
    with pytest.raises(NotImplementedError):
        scipy.io.loadmat(path)  # really the v7.3 path, not scipy's
    loaded, info = load_mask(path)
    np.testing.assert_array_equal(loaded, mask)
    assert info["key"] == "mask" and info["assumed"] == "uncentred"


def test_png_and_tif(tmp_path):
    mask = make_mask("random", (64, 80), 0.3, seed=1)
    iio.imwrite(tmp_path / "m.png", (mask * 255).astype(np.uint8))
    loaded, info = load_mask(tmp_path / "m.png")
    np.testing.assert_array_equal(loaded, mask)
    assert info["key"] is None and not info["weighted"]
    kt = make_mask("radial", (4, 64, 64), 0.2)
    tifffile.imwrite(tmp_path / "kt.tif", mask_to_uncentred(kt).astype(np.uint8), photometric="minisblack")
    loaded, info = load_mask(tmp_path / "kt.tif")
    np.testing.assert_array_equal(loaded, kt)
    assert info["assumed"] == "uncentred"


def test_weights_kept_and_frames_last_moved(tmp_path):
    weights = np.clip(make_mask("gaussian", (64, 64), 0.3) * 0.5 + 0.25 * (np.arange(64) % 2), 0, 1)
    np.save(tmp_path / "w.npy", weights.astype(np.float32))
    loaded, info = load_mask(tmp_path / "w.npy", centred=True)
    assert info["weighted"] and "weighted" in info["message"]
    np.testing.assert_allclose(loaded, weights)
    kt = make_mask("equispaced", (6, 64, 48), 0.25)
    np.save(tmp_path / "hwt.npy", np.moveaxis(kt, 0, -1))  # frames last, like MATLAB
    loaded, _ = load_mask(tmp_path / "hwt.npy")
    np.testing.assert_array_equal(loaded, kt)


def test_mat_key_selection(tmp_path):
    mask = make_mask("cartesian", (32, 40), 0.3)
    path = tmp_path / "two.mat"
    scipy.io.savemat(path, {"mask_a": mask, "mask_b": 1 - mask, "note": "x", "scalar": 3.0})
    with pytest.raises(MaskError, match="several") as err:
        load_mask(path)
    assert "mask_a" in str(err.value) and "mask_b" in str(err.value)
    loaded, info = load_mask(path, key="mask_a", centred=True)
    np.testing.assert_array_equal(loaded, mask)
    assert info["key"] == "mask_a"
    with pytest.raises(MaskError, match="mask_c"):
        load_mask(path, key="mask_c")


# --------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    "args, match",
    [
        (("spiral", (64, 64), 0.2), "unknown mask kind"),
        (("random", (64, 64), 0.0), "ratio"),
        (("random", (64, 64), 1.5), "ratio"),
        (("random", (64, 64), float("nan")), "ratio"),
        (("random", (64,), 0.2), "shape"),
        (("random", (64, 0), 0.2), "shape"),
        (("random", (2, 3, 64, 64), 0.2), "shape"),
    ],
)
def test_make_mask_rejects_bad_input(args, match):
    with pytest.raises(MaskError, match=match):
        make_mask(*args)


def test_bad_seed_and_centre_fraction():
    with pytest.raises(MaskError, match="seed"):
        make_mask("random", (32, 32), 0.2, seed=-1)
    with pytest.raises(MaskError, match="center_fraction"):
        make_mask("cartesian", (32, 32), 0.2, center_fraction=1.5)
    assert issubclass(MaskError, ValueError)


@pytest.mark.parametrize(
    "array, match",
    [
        (np.ones(64), "2 dimensions"),
        (np.ones((2, 2, 8, 8)), "2D"),
        (np.where(np.eye(16) > 0, np.nan, 1.0), "NaN"),
        (np.zeros((16, 16)), "all zeros"),
        (-np.ones((16, 16)), "negative"),
    ],
    ids=("1d", "4d", "nan", "zeros", "negative"),
)
def test_load_rejects_bad_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    with pytest.raises(MaskError, match=match):
        load_mask(tmp_path / "bad.npy")


def test_load_rejects_missing_and_unreadable_files(tmp_path):
    with pytest.raises(MaskError, match="not found"):
        load_mask(tmp_path / "nope.npy")
    (tmp_path / "m.txt").write_text("1 0 1")
    with pytest.raises(MaskError, match=r"\.txt"):
        load_mask(tmp_path / "m.txt")
    (tmp_path / "junk.mat").write_bytes(b"not a mat file at all" * 10)
    with pytest.raises(MaskError, match="could not be read"):
        load_mask(tmp_path / "junk.mat")
    with pytest.raises(MaskError, match=r"\.png"):
        save_mask(tmp_path / "m.png", np.ones((4, 4)))


def test_in_memory_checks():
    with pytest.raises(MaskError, match="2D"):
        realised_ratio(np.ones(10))
    with pytest.raises(MaskError, match="NaN"):
        detect_centring(np.full((8, 8), np.nan))


def test_shape_mismatch_errors():
    mask = make_mask("cartesian", (256, 256), 0.25)
    op = MRIOperator(mask)
    with pytest.raises(ValueError, match=r"does not match data shape \(192, 192\)"):
        op.A(torch.zeros(192, 192))
    with pytest.raises(MaskError, match="does not match image shape"):
        check_mask_shape(mask, (192, 192))
    check_mask_shape(mask, (3, 256, 256))
    with pytest.raises(MaskError, match="frame"):
        check_mask_shape(make_mask("radial", (4, 64, 64), 0.2), (5, 64, 64))


# --------------------------------------------------------------------------- preview
def test_preview_png(tmp_path):
    mask = make_mask("poisson", (48, 40), 0.3)
    mask_preview_png(mask, tmp_path / "m.png")
    np.testing.assert_array_equal(iio.imread(tmp_path / "m.png"), (mask * 255).astype(np.uint8))
    kt = make_mask("radial", (5, 32, 30), 0.2)
    mask_preview_png(kt, tmp_path / "kt.png", title="radial k-t")
    img = iio.imread(tmp_path / "kt.png")
    assert img.shape == (14 + 2 * 32 + 2, 3 * 30 + 2 * 2)  # title band, 2 x 3 montage
    np.testing.assert_array_equal(img[14 + 34 : 14 + 66, 32:62], (kt[4] * 255).astype(np.uint8))
    assert img[:14].max() > 0  # the title was drawn


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_line_masks_are_the_1d_kinds(kind):
    m = make_mask(kind, (3, 32, 40), 0.25, seed=1)
    assert is_line_mask(m) == (kind in ONE_D)
    assert is_line_mask(np.swapaxes(m, -1, -2)) == (kind in ONE_D)  # rows instead of columns


def test_line_mask_needs_one_axis_for_all_frames():
    m = np.zeros((2, 8, 8), np.float32)
    m[0, :, 3] = 1  # a column in frame 0
    m[1, 3, :] = 1  # a row in frame 1
    assert not is_line_mask(m)


@pytest.mark.parametrize("kind", sorted(FAMILY_OF_KIND))
@pytest.mark.parametrize("ratio", [0.05, 0.1, 0.3, 0.5])
def test_mask_family_of_every_generated_kind(kind, ratio):
    for shape, seed in (((256, 256), 0), ((128, 96), 3), ((2, 64, 64), 1)):
        assert mask_family(make_mask(kind, shape, ratio, seed=seed)) == FAMILY_OF_KIND[kind], (shape, seed)


def test_mask_family_of_the_cgpd_paper_masks(data_root):
    folder = data_root / "CGPD-CSNet" / "sampling_matrix"
    expected = {"Cartesian": "cartesian", "Cartesian_untrained": "cartesian", "pseudo-radial": "radial",
                "2D-random": "random2d"}
    seen = 0
    for sub, family in expected.items():
        for path in sorted((folder / sub).glob("*.mat")):
            assert mask_family(load_mask(path)[0]) == family, path.name
            seen += 1
    assert seen == 19
