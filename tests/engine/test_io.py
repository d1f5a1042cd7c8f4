"""Readers and writers: every format round-trips, every bad input raises UnusableFileError."""

from __future__ import annotations

import sys

import h5py
import imageio.v3 as iio
import numpy as np
import pytest
import scipy.io
import scipy.sparse
import tifffile

from napari_unrollrecon.engine import io
from napari_unrollrecon.engine.io import UnusableFileError, read

RNG = np.random.default_rng(0)


def fft2c_np(x):
    return np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def ifft2c_np(k):
    return np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(k, axes=(-2, -1)), norm="ortho"), axes=(-2, -1))


def phantom(h=24, w=20, complex_=False):
    """A smooth blob filling the field of view (not k-space-like), optionally with phase."""
    yy, xx = np.mgrid[:h, :w]
    x = np.exp(-(((yy - h / 2) / (h / 3)) ** 2 + ((xx - w / 2) / (w / 3)) ** 2)) + 0.3 * RNG.random((h, w))
    if complex_:
        x = x * np.exp(1j * (xx / w + yy / h))
    return x


def unusable(fn, *args, match, **kw):
    with pytest.raises(UnusableFileError, match=match) as e:
        fn(*args, **kw)
    return str(e.value)


# --------------------------------------------------------------------------- numpy
def test_npy_real_and_complex_round_trip(tmp_path):
    x = phantom()
    np.save(tmp_path / "r.npy", x)
    got = read(tmp_path / "r.npy")
    assert got.kind == "image" and got.data.dtype == np.float32
    np.testing.assert_allclose(got.data, x, rtol=1e-6)
    assert got.meta["dtype"] == "float64" and got.meta["source"].endswith("r.npy")

    z = phantom(complex_=True)
    np.save(tmp_path / "c.npy", z)
    got = read(tmp_path / "c.npy")
    assert got.kind == "image" and got.data.dtype == np.complex64
    np.testing.assert_allclose(got.data, z, rtol=1e-5)


def test_auto_detects_centred_and_uncentred_kspace(tmp_path):
    z = phantom(64, 64, complex_=True)
    np.save(tmp_path / "kc.npy", fft2c_np(z))
    np.save(tmp_path / "ku.npy", np.fft.fft2(z))
    kc, ku = read(tmp_path / "kc.npy"), read(tmp_path / "ku.npy")
    assert (kc.kind, kc.meta["centred"]) == ("kspace", True)
    assert (ku.kind, ku.meta["centred"]) == ("kspace", False)
    assert kc.data.dtype == np.complex64
    # the same data forced to an image stays complex
    assert read(tmp_path / "kc.npy", kind="image").kind == "image"
    # real data is never guessed to be k-space, but can be asked for
    np.save(tmp_path / "real.npy", np.abs(fft2c_np(z)))
    assert read(tmp_path / "real.npy").kind == "image"
    assert read(tmp_path / "real.npy", kind="kspace").data.dtype == np.complex64


def test_npy_slice_and_squeeze(tmp_path):
    stack = RNG.random((4, 8, 6))
    np.save(tmp_path / "s.npy", stack)
    got = read(tmp_path / "s.npy", slice_index=2)
    np.testing.assert_allclose(got.data, stack[2], rtol=1e-6)
    assert got.meta["slice_index"] == 2 and got.meta["n_slices"] == 4
    unusable(read, tmp_path / "s.npy", slice_index=4, match="out of range")
    np.save(tmp_path / "one.npy", stack[:1, :, :, None])
    got = read(tmp_path / "one.npy")
    assert got.data.shape == (8, 6) and got.meta["squeezed_from"] == (1, 8, 6, 1)


def test_npz_choice_by_key_and_errors(tmp_path):
    a, b = RNG.random((5, 6)), RNG.random((7, 3))
    np.savez(tmp_path / "one.npz", img=a)
    np.testing.assert_allclose(read(tmp_path / "one.npz").data, a, rtol=1e-6)
    np.savez(tmp_path / "two.npz", first=a, second=b, scale=np.array(2.0))
    msg = unusable(read, tmp_path / "two.npz", match="several arrays")
    assert "first (5, 6)" in msg and "second (7, 3)" in msg and "key=" in msg
    np.testing.assert_allclose(read(tmp_path / "two.npz", key="second").data, b, rtol=1e-6)
    unusable(read, tmp_path / "two.npz", key="nope", match="no array 'nope'")
    assert io.list_variables(tmp_path / "two.npz") == {"first": (5, 6), "second": (7, 3), "scale": ()}


def test_kind_from_variable_name(tmp_path):
    np.savez(tmp_path / "s.npz", sino_fan=RNG.random((36, 16)))
    np.savez(tmp_path / "m.npz", mask_cart=(RNG.random((8, 8)) > 0.5))
    assert read(tmp_path / "s.npz").kind == "sinogram"
    m = read(tmp_path / "m.npz")
    assert m.kind == "mask" and m.data.dtype == np.float32 and set(np.unique(m.data)) <= {0.0, 1.0}


# --------------------------------------------------------------------------- pictures
def test_png_keeps_8bit_and_16bit_values(tmp_path):
    u8 = RNG.integers(0, 256, (16, 12), dtype=np.uint8)
    u16 = RNG.integers(0, 65536, (16, 12), dtype=np.uint16)
    iio.imwrite(tmp_path / "a.png", u8)
    iio.imwrite(tmp_path / "b.png", u16)
    a, b = read(tmp_path / "a.png"), read(tmp_path / "b.png")
    assert a.data.dtype == np.float32 and a.kind == "image"
    np.testing.assert_array_equal(a.data, u8.astype(np.float32))
    np.testing.assert_array_equal(b.data, u16.astype(np.float32))


def test_png_gray_rgb_reduced_colour_refused(tmp_path):
    g = RNG.integers(0, 256, (10, 9), dtype=np.uint8)
    iio.imwrite(tmp_path / "rgb_gray.png", np.stack([g, g, g], -1))
    iio.imwrite(tmp_path / "rgba_gray.png", np.stack([g, g, g, np.full_like(g, 255)], -1))
    for name in ("rgb_gray.png", "rgba_gray.png"):
        got = read(tmp_path / name)
        np.testing.assert_array_equal(got.data, g.astype(np.float32))
        assert any("grayscale" in n for n in got.meta["notes"])
    colour = np.stack([g, 255 - g, g // 2], -1)
    iio.imwrite(tmp_path / "colour.png", colour)
    msg = unusable(read, tmp_path / "colour.png", match="colour")
    assert "colour.png" in msg and "grayscale" in msg


def test_tiff_stack_slice_and_rgb(tmp_path):
    stack = RNG.random((3, 10, 8)).astype(np.float32)
    tifffile.imwrite(tmp_path / "s.tif", stack, photometric="minisblack")
    np.testing.assert_array_equal(read(tmp_path / "s.tif").data, stack)
    np.testing.assert_array_equal(read(tmp_path / "s.tif", slice_index=1).data, stack[1])
    rgb = RNG.integers(0, 256, (10, 8, 3), dtype=np.uint8)
    tifffile.imwrite(tmp_path / "rgb.tiff", rgb, photometric="rgb")
    unusable(read, tmp_path / "rgb.tiff", match="colour")


# --------------------------------------------------------------------------- MATLAB
def test_mat_v5(tmp_path):
    z = phantom(12, 10, complex_=True)
    scipy.io.savemat(tmp_path / "one.mat", {"Img": z, "scale": 2.0, "label": "brain"})
    got = read(tmp_path / "one.mat")
    assert got.meta["key"] == "Img" and got.meta["format"] == "mat-v5" and got.kind == "image"
    np.testing.assert_allclose(got.data, z, rtol=1e-6)
    unusable(read, tmp_path / "one.mat", key="label", match="'label' is a MATLAB char")
    assert io.list_variables(tmp_path / "one.mat") == {"Img": (12, 10), "scale": (1, 1)}

    cine = RNG.random((8, 6, 5))  # MATLAB H x W x T: frames are on the last axis
    scipy.io.savemat(tmp_path / "two.mat", {"a": cine, "b": RNG.random((4, 4))})
    msg = unusable(read, tmp_path / "two.mat", match="several arrays")
    assert "a (8, 6, 5)" in msg and "b (4, 4)" in msg
    got = read(tmp_path / "two.mat", key="a", slice_index=3)
    np.testing.assert_allclose(got.data, cine[:, :, 3], rtol=1e-6)


def test_mat_v5_struct_and_sparse(tmp_path):
    scipy.io.savemat(tmp_path / "s.mat", {"s": {"field": np.ones((3, 3))}})
    unusable(read, tmp_path / "s.mat", match="no numeric array")
    sp = scipy.sparse.random(6, 7, density=0.3, random_state=1, format="csc")
    scipy.io.savemat(tmp_path / "sp.mat", {"m": sp})
    unusable(read, tmp_path / "sp.mat", match="no numeric array")  # sparse only by key
    np.testing.assert_allclose(read(tmp_path / "sp.mat", key="m").data, sp.toarray(), rtol=1e-6)


def write_mat73(path, variables: dict):
    """Mimic a MATLAB v7.3 file: 512-byte header block, column-major arrays, class attributes."""
    with h5py.File(path, "w", userblock_size=512) as f:
        for name, v in variables.items():
            if isinstance(v, str):
                ds = f.create_dataset(name, data=np.frombuffer(v.encode("utf-16-le"), np.uint16)[:, None])
                ds.attrs["MATLAB_class"] = np.bytes_(b"char")
                continue
            v = np.asarray(v)
            data = v.T  # MATLAB is column-major: HDF5 holds the transpose
            if np.iscomplexobj(v):
                rec = np.empty(data.shape, dtype=[("real", "<f8"), ("imag", "<f8")])
                rec["real"], rec["imag"] = data.real, data.imag
                data = rec
            ds = f.create_dataset(name, data=data.astype(np.uint8) if v.dtype == bool else data)
            cls = "logical" if v.dtype == bool else "double"
            ds.attrs["MATLAB_class"] = np.bytes_(cls.encode())
        g = f.create_group("opts")
        g.attrs["MATLAB_class"] = np.bytes_(b"struct")
        g.create_dataset("iters", data=np.array([[3.0]])).attrs["MATLAB_class"] = np.bytes_(b"double")
    with open(path, "r+b") as fh:
        fh.write(b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: test HDF5 schema 1.00 .")


def test_mat_v73_orientation_complex_and_choice(tmp_path):
    z = phantom(12, 7, complex_=True)  # non-square, so a missing transpose would show
    write_mat73(tmp_path / "c.mat", {"im_ori": z, "title": "chest"})
    got = read(tmp_path / "c.mat")
    assert got.meta["format"] == "mat-v7.3" and got.meta["key"] == "im_ori"
    assert got.data.shape == (12, 7) and got.data.dtype == np.complex64
    np.testing.assert_allclose(got.data, z, rtol=1e-6)
    assert io.list_variables(tmp_path / "c.mat") == {"im_ori": (12, 7)}
    unusable(read, tmp_path / "c.mat", key="opts", match="MATLAB struct")

    cine = RNG.random((9, 5, 4))
    mask = RNG.random((9, 5)) > 0.5
    write_mat73(tmp_path / "d.mat", {"seq": cine, "mask": mask})
    unusable(read, tmp_path / "d.mat", match="several arrays")
    got = read(tmp_path / "d.mat", key="seq", slice_index=2)
    np.testing.assert_allclose(got.data, cine[:, :, 2], rtol=1e-6)
    m = read(tmp_path / "d.mat", key="mask")
    assert m.kind == "mask"
    np.testing.assert_array_equal(m.data, mask.astype(np.float32))


# --------------------------------------------------------------------------- fastMRI
def write_fastmri(path, kspace, rss=None):
    with h5py.File(path, "w") as f:
        f.create_dataset("kspace", data=kspace.astype(np.complex64))
        f.create_dataset("ismrmrd_header", data=b"<ismrmrdHeader/>")
        if rss is not None:
            f.create_dataset("reconstruction_rss", data=rss.astype(np.float32))


def test_fastmri_single_coil(tmp_path):
    imgs = np.stack([phantom(16, 12, complex_=True) for _ in range(5)])
    k = fft2c_np(imgs)
    write_fastmri(tmp_path / "sc.h5", k)
    got = read(tmp_path / "sc.h5")
    assert got.kind == "kspace" and got.meta["slice_index"] == 2 and got.meta["centred"] is True
    np.testing.assert_allclose(got.data, k[2], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(read(tmp_path / "sc.h5", slice_index=4).data, k[4], rtol=1e-5, atol=1e-6)
    im = read(tmp_path / "sc.h5", kind="image", slice_index=0)
    assert im.kind == "image"
    np.testing.assert_allclose(im.data, imgs[0], atol=1e-5)
    unusable(read, tmp_path / "sc.h5", slice_index=5, match="out of range")


def test_fastmri_multi_coil_rss(tmp_path):
    k = fft2c_np(RNG.standard_normal((3, 4, 16, 12)) + 1j * RNG.standard_normal((3, 4, 16, 12)))
    rss_ref = np.sqrt(np.sum(np.abs(ifft2c_np(k)) ** 2, axis=1))  # direct, per slice
    write_fastmri(tmp_path / "mc.h5", k, rss=rss_ref)
    got = read(tmp_path / "mc.h5")
    assert got.kind == "image" and got.meta["combination"] == "rss" and got.meta["coils"] == 4
    np.testing.assert_allclose(got.data, rss_ref[1], rtol=1e-4)
    np.testing.assert_allclose(io.rss_image(k[0]), rss_ref[0], rtol=1e-4)
    msg = unusable(read, tmp_path / "mc.h5", kind="kspace", match="multi-coil")
    assert "kind='image'" in msg and "coil:" in msg
    c = read(tmp_path / "mc.h5", key="coil:2", slice_index=0)
    assert c.kind == "kspace" and c.meta["coil"] == 2
    np.testing.assert_allclose(c.data, k[0, 2], rtol=1e-5, atol=1e-6)
    unusable(read, tmp_path / "mc.h5", key="coil:4", match="coil 4 does not exist")
    ref = read(tmp_path / "mc.h5", key="reconstruction_rss")
    assert ref.kind == "image" and ref.meta["slice_index"] == 1
    np.testing.assert_allclose(ref.data, rss_ref[1], rtol=1e-6)


def test_h5_file_closed_after_read(tmp_path):
    p = tmp_path / "k.h5"
    write_fastmri(p, fft2c_np(RNG.random((2, 8, 8))))
    read(p)
    with h5py.File(p, "w") as f:  # truncating a file still open in this process would fail
        f["x"] = np.zeros(3)
    unusable(read, p, match="no numeric array")  # also closed on the error path
    with h5py.File(p, "w"):
        pass
    p.unlink()


def test_h5_without_usable_dataset_lists_contents(tmp_path):
    with h5py.File(tmp_path / "n.h5", "w") as f:
        f["header"] = b"text"
        f["vector"] = np.arange(5.0)
    msg = unusable(read, tmp_path / "n.h5", match="no numeric array")
    assert "header" in msg and "vector (5,)" in msg


# --------------------------------------------------------------------------- DICOM
def write_dicom(path, pixels, slope=1.0, intercept=0.0):
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    fm = FileMetaDataset()
    fm.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    fm.MediaStorageSOPInstanceUID = generate_uid()
    fm.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset(str(path), {}, file_meta=fm, preamble=b"\0" * 128)
    ds.Modality, ds.SOPInstanceUID = "CT", fm.MediaStorageSOPInstanceUID
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel, ds.PhotometricInterpretation = 1, "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 16, 15, 0
    ds.RescaleSlope, ds.RescaleIntercept = slope, intercept
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    ds.save_as(str(path), enforce_file_format=True)


def test_dicom_rescale_and_sniffing(tmp_path):
    raw = RNG.integers(0, 4096, (12, 10), dtype=np.uint16)
    write_dicom(tmp_path / "a.dcm", raw, slope=2.0, intercept=-1024.0)
    got = read(tmp_path / "a.dcm")
    assert got.meta["format"] == "dicom" and got.meta["modality"] == "CT"
    np.testing.assert_array_equal(got.data, raw * 2.0 - 1024.0)
    write_dicom(tmp_path / "IM0001", raw)  # DICOM folders often have no extensions
    np.testing.assert_array_equal(read(tmp_path / "IM0001").data, raw.astype(np.float32))


def test_dicom_without_pydicom(tmp_path, monkeypatch):
    write_dicom(tmp_path / "a.dcm", np.ones((4, 4)))
    monkeypatch.setitem(sys.modules, "pydicom", None)
    unusable(read, tmp_path / "a.dcm", match=r"pip install napari-unrollrecon\[dicom\]")


# --------------------------------------------------------------------------- folders
def test_folder_sorted_and_filtered(tmp_path):
    for name in ["im-10.npy", "im-2.npy", "im-1.npy"]:
        np.save(tmp_path / name, np.full((4, 4), float(name[3:-4])))
    iio.imwrite(tmp_path / "a.png", np.zeros((4, 4), np.uint8))
    np.save(tmp_path / ".hidden.npy", np.ones((4, 4)))
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "sub").mkdir()
    np.save(tmp_path / "sub" / "deep.npy", np.ones((4, 4)))
    got = io.read_many(tmp_path)
    assert [g.meta["name"] for g in got] == ["a", "im-1", "im-2", "im-10"]
    assert [float(g.data[0, 0]) for g in got[1:]] == [1.0, 2.0, 10.0]
    assert len(io.read_many(tmp_path / "a.png")) == 1
    (tmp_path / "empty").mkdir()
    unusable(io.read_many, tmp_path / "empty", match="no data files")


# --------------------------------------------------------------------------- bad input
@pytest.mark.parametrize(
    "name, content, match",
    [
        ("x.xyz", b"hello", "unknown file type"),
        ("bad.npy", b"\x93NUMPY garbage", "could not be read"),
        ("bad.h5", b"not hdf5 at all", "could not be read"),
        ("bad.png", b"\x89PNG broken", "could not be read"),
        ("bad.mat", b"MATLAB 5.0 nonsense", "could not be read"),
        ("bad.tif", b"II*\x00broken", "could not be read"),
        ("bad.dcm", b"\0" * 128 + b"DICM" + b"\x02", "DICOM"),
    ],
)
def test_corrupt_or_unknown_files(tmp_path, name, content, match):
    (tmp_path / name).write_bytes(content)
    msg = unusable(read, tmp_path / name, match=match)
    assert name in msg


@pytest.mark.parametrize(
    "array, match",
    [
        (np.arange(5.0), "at least 2 dimensions"),
        (np.ones((1, 7)), "at least 2 dimensions"),
        (np.ones((2, 2, 2, 2, 2)), "at most 4"),
        (np.array([[1.0, np.nan], [0.0, 1.0]]), "1 NaN/Inf"),
        (np.array([[1.0, np.inf], [0.0, 1.0]]), "NaN/Inf"),
        (np.array([[1.0, 1e39], [0.0, 1.0]]), "beyond the float32 range"),
        (np.array([[1.0, 1e39j], [0.0, 1.0]]), "beyond the float32 range"),
        (np.zeros((0, 4)), "empty"),
        (np.array([["a", "b"], ["c", "d"]]), "non-numeric"),
        (np.zeros((2, 2), dtype=[("a", "f4"), ("b", "i4")]), "non-numeric"),
    ],
)
def test_bad_arrays(tmp_path, array, match):
    np.save(tmp_path / "bad.npy", array)
    msg = unusable(read, tmp_path / "bad.npy", match=match)
    assert "bad.npy" in msg


def test_pickles_never_loaded(tmp_path):
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    unusable(read, tmp_path / "obj.npy", match="Python objects")
    np.savez(tmp_path / "obj.npz", o=np.array([{"a": 1}], dtype=object), allow_pickle=True)
    unusable(read, tmp_path / "obj.npz", match="no numeric array")


def test_bad_arguments_and_paths(tmp_path):
    np.save(tmp_path / "c.npy", phantom(complex_=True))
    unusable(read, tmp_path / "missing.npy", match="not found")
    unusable(read, tmp_path, match="read_many")
    unusable(read, tmp_path / "c.npy", kind="mask", match="complex")
    unusable(read, tmp_path / "c.npy", slice_index=0, match="2-D")
    with pytest.raises(ValueError, match="kind must be one of"):
        read(tmp_path / "c.npy", kind="picture")


# --------------------------------------------------------------------------- writers
META = {"method": "ISTA-Net+", "stage": 9, "psnr": 31.5, "ok": True, "params": {"lam": 0.01},
        "shape": [2, 6, 5], "none": None, "acc": np.float32(4.0)}


@pytest.mark.parametrize("ext", [".npy", ".h5", ".tif", ".tiff"])
def test_writer_round_trip(tmp_path, ext):
    x = RNG.random((2, 6, 5)).astype(np.float32)
    p = io.write(tmp_path / "out" / f"rec{ext}", x, META)
    assert p.exists()
    np.testing.assert_array_equal(read(p).data, x)
    meta = io.read_meta(p)
    if ext == ".npy":
        assert meta == {}
        return
    expected = {**META, "acc": 4.0}
    assert meta == expected
    assert read(p).meta["file_meta"] == expected


def test_writer_complex_and_bad_input(tmp_path):
    z = phantom(complex_=True).astype(np.complex64)
    np.testing.assert_array_equal(read(io.write(tmp_path / "z.h5", z), kind="image").data, z)
    with h5py.File(tmp_path / "z.h5", "a") as f:  # a saved file may carry its mask beside it
        f["mask"] = np.ones(z.shape, np.float32)
    assert read(tmp_path / "z.h5").meta["key"] == "reconstruction"
    with pytest.raises(ValueError, match="complex"):
        io.write(tmp_path / "z.tif", z)
    with pytest.raises(ValueError, match="unknown extension"):
        io.write(tmp_path / "z.jpg", np.ones((2, 2)))
    with pytest.raises(ValueError, match="numeric"):
        io.write(tmp_path / "s.npy", np.array([["a"]]))


# --------------------------------------------------------------------------- real data
@pytest.mark.data
def test_real_brain_png(data_root):
    p = data_root / "ISTA-Net-PyTorch/data/BrainImages_test/brain_test_01.png"
    got = read(p)
    assert got.kind == "image" and got.data.shape == (256, 256) and got.data.dtype == np.float32
    assert got.data.min() >= 0 and 128 < got.data.max() <= 255
    np.testing.assert_array_equal(got.data, np.round(got.data))  # 0-255 scale kept


@pytest.mark.data
def test_real_hggdp_complex_mat(data_root):
    got = read(data_root / "HGGDP/hggdp_rec/test_image31/test_data_01.mat")
    assert got.kind == "image" and got.meta["key"] == "Img"
    assert got.data.shape == (256, 256) and got.data.dtype == np.complex64
    assert np.abs(got.data.imag).max() > 0.01
    assert np.isclose(np.abs(got.data).max(), 1.0, atol=1e-5)


@pytest.mark.data
def test_real_deep_admm_v73_orientation(data_root):
    base = data_root / "Deep-ADMM-Net/data"
    got = read(base / "ChestTrain/im-04.mat")
    assert got.meta["format"] == "mat-v7.3" and got.meta["key"] == "im_ori"
    assert got.data.shape == (256, 256) and got.data.dtype == np.float32
    assert 0 <= got.data.min() and got.data.max() <= 1
    with h5py.File(base / "ChestTrain/im-04.mat", "r") as f:
        np.testing.assert_array_equal(got.data, f["im_ori"][()].T.astype(np.float32))
    # The same repository's Brain_data1.mat is ISTA-Net's brain_test_11.png (SOURCE.md): the read
    # orientation must match the PNG, and the transposed one must not.
    brain = read(base / "Brain_data/Brain_data1.mat").data.ravel()
    png = read(data_root / "ISTA-Net-PyTorch/data/BrainImages_test/brain_test_11.png").data
    assert np.corrcoef(brain, png.ravel())[0, 1] > 0.99
    assert np.corrcoef(brain, png.T.ravel())[0, 1] < 0.9


def test_matlab_frames_last_series_is_moved_to_frames_first_and_said(tmp_path):
    """Cine data and k-t masks in MATLAB are H×W×T: the short last axis is the frame axis."""
    import scipy.io

    from napari_unrollrecon.engine import io

    series = np.random.default_rng(0).random((8, 48, 40)).astype(np.float32)  # (T, H, W)
    scipy.io.savemat(tmp_path / "cine.mat", {"seq": np.moveaxis(series, 0, -1)})  # H×W×T on disk
    loaded = io.read(tmp_path / "cine.mat")
    assert loaded.data.shape == (8, 48, 40) and np.allclose(loaded.data, series)
    assert "frame axis assumed last" in loaded.meta["frame_axis"]
    kept = io.read(tmp_path / "cine.mat", frames="first")
    assert kept.data.shape == (48, 40, 8) and "frame_axis" not in kept.meta
    np.save(tmp_path / "tfirst.npy", series)
    assert io.read(tmp_path / "tfirst.npy").data.shape == (8, 48, 40)  # already frames-first: untouched
    forced = io.read(tmp_path / "tfirst.npy", frames="last")
    assert forced.data.shape == (40, 8, 48)


# --------------------------------------------------------------------------- safe outputs (issue 14)
def test_write_refuses_non_finite_and_folders(tmp_path):
    with pytest.raises(ValueError, match=r"refusing to write w\.npy: 1 of 4 values are NaN or infinite"):
        io.write(tmp_path / "w.npy", np.array([1.0, np.nan, 2.0, 3.0]))
    assert not (tmp_path / "w.npy").exists()
    (tmp_path / "d.npy").mkdir()
    with pytest.raises(ValueError, match="it is a folder"):
        io.write(tmp_path / "d.npy", np.ones(3))


def test_write_creates_missing_folder_and_leaves_no_partial_file(tmp_path):
    out = io.write(tmp_path / "new" / "deeper" / "o.h5", np.ones((4, 4), np.float32), {"a": 1})
    assert out.exists() and [p.name for p in out.parent.iterdir()] == ["o.h5"]


@pytest.mark.parametrize("ext", [".npy", ".h5", ".tif"])
def test_failed_write_keeps_the_old_file(tmp_path, monkeypatch, ext):
    import errno

    target = tmp_path / f"o{ext}"
    io.write(target, np.full((4, 4), 7, np.float32))
    before = target.read_bytes()

    def full_disk(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    monkeypatch.setattr(io, "_write_h5", full_disk)
    monkeypatch.setattr(io, "_write_tiff", full_disk)
    with pytest.raises(ValueError, match="the disk is full; nothing was written"):
        io.write(target, np.zeros((4, 4), np.float32))
    assert target.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]


def test_writer_killed_mid_write_leaves_old_file_intact(tmp_path):
    import subprocess
    import sys
    import time

    target = tmp_path / "o.npy"
    np.save(target, np.arange(10.0))
    code = ("import numpy as np, time\n"
            "from napari_unrollrecon.engine import io\n"
            "real = np.save\n"
            "def slow(f, a, **k):\n"
            "    open(f, 'wb').write(b'partial')\n"
            "    time.sleep(60)\n"
            "np.save = slow\n"
            f"io.write({str(target)!r}, np.ones((512, 512), np.float32))\n")
    proc = subprocess.Popen([sys.executable, "-c", code])
    try:
        deadline = time.time() + 60
        while not any(p.name.startswith(".o.partial") for p in tmp_path.iterdir()):
            assert time.time() < deadline and proc.poll() is None, "the writer never started its temporary file"
            time.sleep(0.05)
        proc.kill()
        proc.wait()
    finally:
        proc.kill()
    assert np.array_equal(np.load(target), np.arange(10.0))
    assert [p.name for p in io.list_data_files(tmp_path)] == ["o.npy"]  # the hidden leftover is never read


def test_check_output_refuses_input_and_input_folder(tmp_path):
    src = tmp_path / "x.npy"
    np.save(src, np.ones((4, 4)))
    with pytest.raises(ValueError, match="is the input file"):
        io.check_output(src, [src])
    with pytest.raises(ValueError, match="into the input folder"):
        io.check_output(tmp_path / "y.npy", [tmp_path])
    with pytest.raises(ValueError, match="unknown extension"):
        io.check_output(tmp_path / "y.txt", [src])
    io.check_output(tmp_path / "sub" / "y.npy", [tmp_path, None])  # a sub-folder is not read


def test_rss_refuses_non_finite_coils():
    k = np.ones((4, 8, 8), np.complex64)
    k[1, 2, 2] = np.nan
    with pytest.raises(ValueError, match="1 NaN/Inf value"):
        io.rss_image(k)


def test_npz_listing_reads_headers_only(tmp_path):
    p = tmp_path / "a.npz"
    np.savez(p, small=np.ones((3, 4), np.float32), obj=np.array([{"a": 1}], dtype=object))
    entries = io._npz_entries(p)
    assert entries["small"]["shape"] == (3, 4) and entries["small"]["usable"]
    assert not entries["obj"]["usable"] and "Python objects" in entries["obj"]["descr"]
    assert io.read(p, key="small").data.shape == (3, 4)
