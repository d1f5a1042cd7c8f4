"""Manifest, reader, writer and sample data through npe2 / napari, as a user would reach them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from napari_unrollrecon._reader import get_reader
from napari_unrollrecon._writer import write_reconstruction

META = "unrollrecon"


def test_npe2_validate_passes():
    npe2 = Path(sys.executable).with_name("npe2")
    cmd = [str(npe2)] if npe2.exists() else [sys.executable, "-m", "npe2"]
    out = subprocess.run([*cmd, "validate", "napari-unrollrecon"], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "valid" in out.stdout


def test_manifest_name_matches_distribution():
    from npe2 import PluginManager

    pm = PluginManager.instance()
    pm.discover()
    manifest = pm.get_manifest("napari-unrollrecon")
    assert manifest.name == "napari-unrollrecon"
    assert {w.display_name for w in manifest.contributions.widgets} == {"Reconstruction"}
    assert {s.key for s in manifest.contributions.sample_data} == {"mri_phantom", "mri_phantom_magnitude", "cine_phantom",
                                                                "ct_phantom"}


def test_writer_reader_round_trip(tmp_path):
    stack = np.random.default_rng(0).random((3, 32, 32)).astype(np.float32)
    mask = (np.random.default_rng(1).random((32, 32)) > 0.7).astype(np.float32)
    meta = {"name": "tv #1", "metadata": {META: {
        "kind": "reconstruction", "method": "tv", "params": {"lam": 0.01, "iterations": 3},
        "mask": mask, "metrics": {"psnr": 30.5}, "stages": [1, 2, 3],
        "problem": {"mask_kind": "cartesian", "ratio": 0.25, "realised_ratio": 0.27, "seed": 4}}}}
    [written] = write_reconstruction(str(tmp_path / "rec.h5"), stack, meta)
    reader = get_reader(written)
    assert reader is not None
    [(data, kwargs, layer_type)] = reader(written)
    assert layer_type == "image"
    np.testing.assert_array_equal(data, stack)
    info = kwargs["metadata"][META]
    assert info["method"] == "tv" and info["params"] == {"lam": 0.01, "iterations": 3}
    assert info["mask_kind"] == "cartesian" and info["ratio"] == 0.25 and info["seed"] == 4
    np.testing.assert_array_equal(info["mask"], mask)


def test_writer_tiff_keeps_facts(tmp_path):
    from napari_unrollrecon.engine.io import read_meta

    meta = {"name": "x", "metadata": {META: {"method": "fbp", "params": {"filter": "ramp"}, "views": 60}}}
    [written] = write_reconstruction(str(tmp_path / "rec.tif"), np.ones((16, 16), np.float32), meta)
    facts = read_meta(written)
    assert facts["method"] == "fbp" and facts["views"] == 60


def test_reader_kspace_keeps_complex(tmp_path):
    k = (np.random.default_rng(0).standard_normal((32, 32)) + 1j).astype(np.complex64)
    path = tmp_path / "scan.h5"
    with h5py.File(path, "w") as f:
        f["kspace"] = k[None]
    [(data, kwargs, _)] = get_reader(str(path))(str(path))
    info = kwargs["metadata"][META]
    assert info["kind"] == "kspace" and np.iscomplexobj(info["complex"])
    assert data.dtype == np.float32 and data.shape == info["complex"].shape


def test_reader_gives_a_layer_per_array_of_a_multi_array_mat_with_frames_first(tmp_path):
    import scipy.io

    cine = np.random.default_rng(1).standard_normal((24, 20, 6)) + 0j  # MATLAB H×W×T
    mask = (np.random.default_rng(2).random((24, 20, 6)) < 0.3).astype(np.float64)
    path = tmp_path / "cine.mat"
    scipy.io.savemat(path, {"seq": cine, "mask": mask})
    layers = get_reader(str(path))(str(path))
    names = [kw["name"] for _, kw, _ in layers]
    assert len(layers) == 2 and any(n.startswith("cine:seq") for n in names) and any("cine:mask" in n for n in names)
    seq = next(d for d, kw, _ in layers if kw["name"].startswith("cine:seq"))
    assert seq.shape == (6, 24, 20)  # the short last axis was taken as frames, moved first


@pytest.mark.parametrize("make", ["h5_other", "npy_1d", "txt"])
def test_reader_declines_files_it_cannot_handle(tmp_path, make):
    if make == "h5_other":
        path = tmp_path / "cells.h5"
        with h5py.File(path, "w") as f:  # a segmentation file: no kspace, no known dataset
            f["labels"] = np.zeros((8, 8))
            f["raw"] = np.zeros((8, 8))
    elif make == "npy_1d":
        path = tmp_path / "v.npy"
        np.save(path, np.arange(5))
    else:
        path = tmp_path / "notes.txt"
        path.write_text("hello")
    assert get_reader(str(path)) is None


def test_samples_are_phantoms_with_their_measurements():
    from napari_unrollrecon import _sample_data as S

    mri = S.mri_sample(64)
    assert [m[1]["metadata"][META]["kind"] for m in mri] == ["image", "kspace"]
    assert all("phantom" in m[1]["name"] for m in mri)
    k = mri[1][1]["metadata"][META]["complex"]
    img = mri[0][1]["metadata"][META]["complex"]
    assert np.allclose(np.linalg.norm(k), np.linalg.norm(img), rtol=1e-4)  # orthonormal FFT
    mag = S.mri_magnitude_sample(64)
    mag_img = mag[0][1]["metadata"][META]["complex"]
    assert np.allclose(mag_img.imag, 0) and np.allclose(mag_img.real, mri[0][0]) and mag_img.real.min() >= 0
    assert "magnitude" in mag[0][1]["name"] and mag[1][1]["metadata"][META]["reference"] == mag[0][1]["name"]
    [cine] = S.cine_sample(4, 32)
    assert cine[0].shape == (4, 32, 32)
    ct = S.ct_sample(64, 30)
    assert ct[1][0].shape[0] == 30 and ct[1][1]["metadata"][META]["kind"] == "sinogram"


@pytest.mark.gui
def test_sample_data_loads_in_viewer_and_dock_picks_it(make_napari_viewer):
    viewer = make_napari_viewer()
    _, widget = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    viewer.open_sample("napari-unrollrecon", "mri_phantom")
    assert len(viewer.layers) >= 2
    assert widget.input_combo.currentText().startswith("MRI phantom k-space")
    assert widget.ref_combo.currentText() == "MRI phantom (ground truth)"
    assert widget.settings().kind == "kspace" and widget.settings().modality == "mri"
    viewer.open_sample("napari-unrollrecon", "mri_phantom_magnitude")
    assert "magnitude" in widget.input_combo.currentText() and "magnitude" in widget.ref_combo.currentText()
    viewer.open_sample("napari-unrollrecon", "ct_phantom")
    widget.input_combo.setCurrentText("CT phantom sinogram (180 views)")
    assert widget.settings().modality == "ct"
