"""Issue 13.7: the dock's file chooser (another array of a multi-array file, another slice of a
fastMRI volume) and the reader options behind it (layer metadata: file, key, slice)."""

from __future__ import annotations

import h5py
import numpy as np
import pytest
import scipy.io

from napari_unrollrecon._reader import get_reader, read_layers
from napari_unrollrecon._widgets._controller import META_KEY

pytestmark = pytest.mark.gui


def _open(viewer, path):
    """Open ``path`` as napari's File > Open does with our reader."""
    for data, kwargs, _ in get_reader(str(path))(str(path)):
        viewer.add_image(data, **kwargs)


def _cine_mat(tmp_path):
    rng = np.random.default_rng(1)
    path = tmp_path / "cine.mat"
    scipy.io.savemat(path, {"seq": rng.random((24, 20, 6)) + 0.5j, "mask": (rng.random((24, 20, 6)) < 0.3) * 1.0})
    return path


def _fastmri(tmp_path, n=5):
    rng = np.random.default_rng(2)
    k = (rng.standard_normal((n, 32, 32)) + 1j * rng.standard_normal((n, 32, 32))).astype(np.complex64)
    path = tmp_path / "file_brain.h5"
    with h5py.File(path, "w") as f:
        f["kspace"] = k
    return path, k


def _choose(widget, key, index=None):
    chooser = widget.file_chooser
    chooser.array_combo.setCurrentIndex([a.key for a in chooser.arrays].index(key))
    if index is not None:
        chooser.slice_spin.setValue(index)


def test_reader_records_file_key_and_slice_and_takes_them_as_options(tmp_path):
    path, k = _fastmri(tmp_path)
    [(_, kwargs, _)] = read_layers(path)
    info = kwargs["metadata"][META_KEY]
    assert (info["file"], info["key"], info["slice"]) == (str(path), "kspace", 2)  # the middle slice
    [(data, kwargs, _)] = read_layers(path, key="kspace", slice_index=4)
    assert kwargs["name"] == "file_brain [slice 4] (kspace)" and kwargs["metadata"][META_KEY]["slice"] == 4
    np.testing.assert_allclose(kwargs["metadata"][META_KEY]["complex"], k[4])


def test_chooser_opens_another_variable_slice_as_a_new_layer(dock, tmp_path):
    viewer, widget = dock
    path = _cine_mat(tmp_path)
    _open(viewer, path)
    chooser = widget.file_chooser
    assert not chooser.isHidden()
    assert [chooser.array_combo.itemText(i) for i in range(chooser.array_combo.count())] == \
        ["seq · 24×20×6 · double", "mask · 24×20×6 · double"]  # MATLAB's class: complex is a flag
    before = {layer.name: layer.data.copy() for layer in viewer.layers}
    _choose(widget, "seq", 3)
    assert chooser.slice_spin.isEnabled() and chooser.choice() == ("seq", 3)
    chooser.open_choice()
    new = viewer.layers["cine:seq [slice 3]"]
    assert new.data.shape == (24, 20)
    info = new.metadata[META_KEY]
    assert (info["file"], info["key"], info["slice"]) == (str(path), "seq", 3)
    expected = scipy.io.loadmat(path)["seq"][:, :, 3]
    np.testing.assert_allclose(info["complex"], expected, rtol=1e-6)
    for name, data in before.items():  # nothing overwritten
        np.testing.assert_array_equal(viewer.layers[name].data, data)
    assert widget.input_combo.currentText() == new.name  # the new layer is the data layer
    n = len(viewer.layers)
    chooser.open_choice()  # the same choice again: selected, not read twice
    assert len(viewer.layers) == n and viewer.layers.selection.active is new


def test_chooser_picks_a_fastmri_slice_and_hides_for_other_layers(dock, tmp_path, phantom):
    viewer, widget = dock
    path, k = _fastmri(tmp_path)
    _open(viewer, path)
    chooser = widget.file_chooser
    assert not chooser.isHidden()
    assert chooser.slice_spin.value() == 2 and chooser.slice_spin.minimum() == 0  # middle; no 'all' for k-space
    chooser.slice_spin.setValue(4)
    chooser.open_choice()
    layer = viewer.layers["file_brain [slice 4] (kspace)"]
    np.testing.assert_allclose(layer.metadata[META_KEY]["complex"], k[4])
    assert widget.input_combo.currentText() == layer.name and chooser.slice_spin.value() == 4
    viewer.add_image(phantom, name="phantom")  # not from a file: no chooser
    assert widget.input_combo.currentText() == "phantom" and chooser.isHidden()


def test_a_bad_choice_gives_a_message_not_a_traceback(dock, tmp_path):
    viewer, widget = dock
    path, _ = _fastmri(tmp_path)
    _open(viewer, path)
    n = len(viewer.layers)
    path.unlink()  # gone since it was opened
    widget.file_chooser.slice_spin.setValue(0)
    widget.file_chooser.open_choice()
    assert len(viewer.layers) == n and "file_brain.h5" in widget.status.text()


def test_real_cine_mat_offers_series_and_mask(dock, data_root):
    path = data_root / "yhao-z-dMRI-Data" / "data_tmi_fast.mat"
    if not path.is_file():
        pytest.skip(f"{path} not found")
    viewer, widget = dock
    _open(viewer, path)
    chooser = widget.file_chooser
    assert [a.key for a in chooser.arrays] == ["seq", "mask"] and not chooser.isHidden()
    _choose(widget, "seq", 0)
    chooser.open_choice()
    assert viewer.layers["data_tmi_fast:seq [slice 0]"].data.shape == (110, 110)
