"""Regression tests (issue 13.2/13.3) for what the dock takes as input and says about it: an
uncentred mask layer, a real image called k-space, a real-valued network on complex data, and a
newly opened file becoming the data layer (CT data switching the modality to CT)."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unrollrecon._widgets import _controller as C
from napari_unrollrecon._widgets._controller import META_KEY

pytestmark = pytest.mark.gui


def _run(qtbot, widget, method):
    widget.method_combo.setCurrentIndex(widget.method_combo.findData(method))
    widget.run()
    qtbot.waitUntil(widget.settled, timeout=60000)


def test_an_uncentred_mask_layer_is_detected_and_the_dock_says_which_layout(dock, qtbot, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    centred = C.make_mask(C.RunSettings(ratio=0.25), phantom.shape)[0]
    viewer.add_image(np.fft.ifftshift(centred).astype(np.uint8), name="mask_25")  # DC at [0, 0], as a paper's
    widget.input_combo.setCurrentText("phantom")
    widget.mask_layer_combo.setCurrentText("mask_25")
    qtbot.waitUntil(lambda: "uncentred" in widget.realised_label.text(), timeout=3000)
    _run(qtbot, widget, "zero-filled")
    status = widget.status.text()
    assert "assumed uncentred" in status and "shifted to centre" in status, status
    assert "mask layer 'mask_25'" in status
    np.testing.assert_array_equal(widget.active.mask, centred)  # the run used the centred mask
    assert widget.active.settings.describe() == "MRI, mask layer 'mask_25'"  # the canvas caption, not the generator's


def test_a_real_image_called_k_space_is_refused_before_a_run(dock, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    widget.kind_combo.setCurrentText("k-space")
    widget.run()
    assert widget.worker is None
    assert "k-space must be complex" in widget.status.text() and "\n" not in widget.status.text()
    assert [layer.name for layer in viewer.layers if not layer.metadata.get(META_KEY)] == ["phantom"]


def test_a_real_valued_network_on_complex_data_says_so_while_it_runs(dock, qtbot):
    from napari_unrollrecon.engine.phantoms import mri_phantom

    viewer, widget = dock
    image = mri_phantom(64)  # complex, smooth phase
    viewer.add_image(np.abs(image).astype(np.float32), name="complex phantom",
                     metadata={META_KEY: {"kind": "image", "complex": image}})
    said = []
    say = widget._say
    widget._say = lambda text: (said.append(text), say(text))
    _run(qtbot, widget, "cgpd-csnet")
    progress = [t for t in said if "stage" in t and "PSNR" in t]
    assert progress and all("⚠" in t and "real part" in t for t in progress), progress[:2]
    assert "⚠" in widget.status.text() and "phase" in widget.status.text()


def test_an_opened_file_becomes_the_data_layer_and_ct_data_switches_to_ct(dock, tmp_path, phantom):
    viewer, widget = dock
    viewer.add_image(phantom, name="phantom")
    viewer.add_image(phantom + 1, name="another image")
    assert widget.input_combo.currentText() == "another image"
    viewer.add_image((phantom > 0.5).astype(np.float32), name="a mask")  # 0/1: not data to reconstruct
    assert widget.input_combo.currentText() == "another image"
    folder = tmp_path / "Test_CT"
    folder.mkdir()
    np.save(folder / "0001.npy", phantom)
    [layer] = viewer.open(str(folder / "0001.npy"), plugin="napari-unrollrecon")
    assert widget.input_combo.currentText() == layer.name
    assert widget.modality_combo.currentData() == "ct"
    assert "CT because" in widget.status.text() and "Test_CT" in widget.status.text()
    assert not widget.views_spin.isHidden() and widget.mask_combo.isHidden()
