"""engine.io.list_arrays: a file's arrays and slices from its headers (the choices behind read's
key / slice_index, the CLI's --key / --slice and the dock's file chooser)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from napari_unrollrecon.engine import io


def _fastmri(path, n=5, coils=0):
    shape = (n, coils, 16, 12) if coils else (n, 16, 12)
    k = (np.random.default_rng(0).standard_normal(shape) + 1j).astype(np.complex64)
    with h5py.File(path, "w") as f:
        f["kspace"] = k
        f["ismrmrd_header"] = b"<ismrmrdHeader/>"
        f["reconstruction_rss"] = np.ones((n, 16, 12), np.float32)
    return k


def test_mat_v5_lists_numeric_variables_with_dtype_and_frames_last(tmp_path):
    path = tmp_path / "cine.mat"
    scipy.io.savemat(path, {"seq": np.zeros((24, 20, 6)), "mask": np.zeros((24, 20, 6), np.uint8),
                            "scale": 2.0, "note": "text"})
    arrays = {a.key: a for a in io.list_arrays(path)}
    assert set(arrays) == {"seq", "mask"}  # the 1×1 scalar and the string are no image
    seq = arrays["seq"]
    assert (seq.shape, seq.dtype, seq.slices, seq.slice_axis, seq.default_slice) == ((24, 20, 6), "double", 6, 2, None)
    assert arrays["mask"].dtype == "uint8"
    assert seq.describe() == "seq · 24×20×6 · double"
    # the choice is what read() takes: slice 3 of seq is its 4th frame (MATLAB's last axis)
    frame = io.read(path, key="seq", slice_index=3)
    assert frame.data.shape == (24, 20) and frame.meta["slice_index"] == 3


def test_mat_v73_shapes_in_matlab_orientation(tmp_path):
    path = tmp_path / "v73.mat"
    with h5py.File(path, "w") as f:
        ds = f.create_dataset("im", data=np.zeros((4, 7, 9)))  # stored transposed: MATLAB 9×7×4
        ds.attrs["MATLAB_class"] = np.bytes_("double")
    [a] = io.list_arrays(path)
    assert a.shape == (9, 7, 4) and a.slices == 4 and a.slice_axis == 2


def test_fastmri_kspace_slices_default_to_the_middle_as_read_does(tmp_path):
    path = tmp_path / "file_brain.h5"
    k = _fastmri(path, n=5)
    arrays = {a.key: a for a in io.list_arrays(path)}
    assert set(arrays) == {"kspace", "reconstruction_rss"}  # the XML header is no array
    ks = arrays["kspace"]
    assert (ks.slices, ks.slice_axis, ks.default_slice, ks.dtype) == (5, 0, 2, "complex64")
    assert io.read(path).meta["slice_index"] == ks.default_slice
    np.testing.assert_allclose(io.read(path, key="kspace", slice_index=4).data, k[4])


def test_npy_npz_and_pictures(tmp_path):
    np.save(tmp_path / "stack.npy", np.zeros((3, 8, 8), np.float32))
    np.save(tmp_path / "line.npy", np.zeros(8))
    np.savez(tmp_path / "two.npz", a=np.zeros((8, 8)), b=np.zeros((2, 8, 8), np.complex64))
    [a] = io.list_arrays(tmp_path / "stack.npy")
    assert (a.key, a.shape, a.slices) == (None, (3, 8, 8), 3)
    assert io.list_arrays(tmp_path / "line.npy") == []
    got = {a.key: (a.shape, a.dtype, a.slices) for a in io.list_arrays(tmp_path / "two.npz")}
    assert got == {"a": ((8, 8), "float64", 0), "b": ((2, 8, 8), "complex64", 2)}
    import imageio.v3 as iio

    iio.imwrite(tmp_path / "p.png", np.zeros((8, 8), np.uint8))
    assert io.list_arrays(tmp_path / "p.png") == []


def test_listing_loads_nothing(tmp_path, monkeypatch):
    path = tmp_path / "big.mat"
    scipy.io.savemat(path, {"x": np.zeros((32, 32, 4)), "y": np.zeros((32, 32))})
    monkeypatch.setattr(scipy.io, "loadmat", lambda *a, **k: pytest.fail("list_arrays loaded data"))
    assert [a.key for a in io.list_arrays(path)] == ["x", "y"]


def test_damaged_file_gives_the_unusable_file_error(tmp_path):
    path = tmp_path / "bad.h5"
    path.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(io.UnusableFileError):
        io.list_arrays(path)


def test_real_cine_mat_lists_its_series_and_mask(data_root):
    path = data_root / "yhao-z-dMRI-Data" / "data_tmi_fast.mat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    arrays = {a.key: a for a in io.list_arrays(path)}
    assert set(arrays) == {"seq", "mask"}  # the 121000² sparse operators D, Dt are not offered
    assert arrays["seq"].shape == (110, 110, 10) and arrays["seq"].slices == 10
