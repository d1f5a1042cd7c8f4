"""Regenerate the dock screenshots under Xvfb with a real viewer.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/images/make_screenshots.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import napari
import torch
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent
torch.set_num_threads(1)


def pump(seconds: float) -> None:
    app = QApplication.instance()
    end = time.time() + seconds
    while time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def wait(cond, timeout: float = 120) -> None:
    app = QApplication.instance()
    end = time.time() + timeout
    while not cond() and time.time() < end:
        app.processEvents()
        time.sleep(0.01)


def viewer_with_dock(title):
    viewer = napari.Viewer(show=True, title=title)
    viewer.window.resize(1500, 950)
    _, dock = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    pump(0.5)
    return viewer, dock


def mri_run():
    viewer, dock = viewer_with_dock("UnrollRecon – MRI TV reconstruction")
    viewer.open_sample("napari-unrollrecon", "mri_phantom")
    dock.mask_combo.setCurrentText("cartesian")
    dock.ratio_spin.setValue(0.25)
    dock.method_combo.setCurrentIndex(dock.method_combo.findData("tv"))
    dock.param_form.set_value("iterations", 300)
    pump(0.5)
    dock.run()
    wait(lambda: dock.active.get("last") is not None and dock.active["last"].stage >= 45)
    for name in list(viewer.layers):  # side by side: ground truth | stages | error
        kind = name.metadata.get("unrollrecon", {}).get("kind")
        name.visible = kind in ("image", "reconstruction", "error") or name.name.endswith("(ground truth)")
    viewer.grid.enabled = True
    viewer.grid.shape = (1, 3)
    viewer.grid.stride = 1
    viewer.reset_view()
    viewer.text_overlay.text += "\npanels: ground truth | TV stages (slider) | |error|"
    pump(0.6)
    viewer.screenshot(str(OUT / "dock_mri_tv_run.png"), canvas_only=False)
    dock.stop()
    wait(lambda: dock.worker is None)
    viewer.close()


def ct_compare():
    viewer, dock = viewer_with_dock("UnrollRecon – sparse-view CT, compare")
    viewer.open_sample("napari-unrollrecon", "ct_phantom")
    dock.input_combo.setCurrentText("CT phantom sinogram (180 views)")
    dock.views_spin.setValue(60)
    from qtpy.QtCore import Qt

    for i in range(dock.compare_list.count()):
        item = dock.compare_list.item(i)
        item.setCheckState(Qt.CheckState.Checked)
    dock.values_by_method["tv"] = {"iterations": 100}
    dock.values_by_method["l1-wavelet"] = {"iterations": 100} if "l1-wavelet" in [
        dock.compare_list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(dock.compare_list.count())] else {}
    for name in list(viewer.layers):
        if name.metadata.get("unrollrecon", {}).get("kind") == "sinogram":
            name.visible = False
    dock.compare()
    wait(lambda: dock.worker is None, timeout=300)
    viewer.reset_view()
    pump(0.8)
    viewer.screenshot(str(OUT / "dock_ct_compare.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    which = sys.argv[1:] or ["mri", "ct"]
    if "mri" in which:
        mri_run()
    if "ct" in which:
        ct_compare()
