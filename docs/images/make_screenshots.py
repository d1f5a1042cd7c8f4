"""Regenerate the dock screenshots under Xvfb with a real viewer.

    xvfb-run -a -s "-screen 0 1600x1000x24" .venv/bin/python docs/images/make_screenshots.py
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import napari
import numpy as np
import torch
from qtpy.QtWidgets import QApplication

OUT = Path(__file__).parent
DATA = Path(os.environ.get("UNROLLRECON_DATA", Path(__file__).parents[3] / "shared" / "datasets"))
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


def setup_run(title, sample, mask, ratio, method, **params):
    """A viewer with the dock, a sample opened, the sampling and method set, side by side on."""
    viewer, dock = viewer_with_dock(title)
    viewer.open_sample("napari-unrollrecon", sample)
    dock.mask_combo.setCurrentText(mask)
    dock.ratio_spin.setValue(ratio)
    choose_method(dock, method, **params)
    return viewer, dock


def choose_method(dock, method, **params):
    """Pick the method, set its parameters, lay the run out side by side."""
    dock.method_combo.setCurrentIndex(dock.method_combo.findData(method))
    for name, value in params.items():
        dock.param_form.set_value(name, value)
    dock.side_check.setChecked(True)
    pump(0.5)


def run_to_end(dock, timeout=300, settle=1.0) -> None:
    dock.run()
    wait(lambda: dock.worker is None, timeout=timeout)
    pump(settle)


def hide_sinograms(viewer) -> None:
    for layer in list(viewer.layers):
        if layer.metadata.get("unrollrecon", {}).get("kind") == "sinogram":
            layer.visible = False


def mri_run():
    """TV on the MRI phantom mid-run, side by side with the reference and its error map."""
    viewer, dock = setup_run("UnrollRecon – MRI TV reconstruction", "mri_phantom", "cartesian", 0.25, "tv",
                             iterations=300)
    dock.run()
    wait(lambda: dock.active.last is not None and dock.active.last.stage >= 110)
    pump(0.6)
    viewer.screenshot(str(OUT / "dock_mri_tv_run.png"), canvas_only=False)
    dock.stop()
    wait(lambda: dock.worker is None)
    viewer.close()


def check_for_compare(dock, wanted, modality, iterations=100) -> None:
    """Tick ``wanted`` in the Compare list (only them); TV and L1-wavelet get fewer iterations
    than their defaults (a quicker picture)."""
    from qtpy.QtCore import Qt

    from napari_unrollrecon.engine import registry

    for i in range(dock.compare_list.count()):
        item = dock.compare_list.item(i)
        keep = item.data(Qt.ItemDataRole.UserRole) in wanted
        item.setCheckState(Qt.CheckState.Checked if keep else Qt.CheckState.Unchecked)
    for name in ("tv", "l1-wavelet"):
        dock.edits.record(registry.get(name), modality, "iterations", iterations)


def compare_to_end(dock, timeout=300) -> None:
    dock.compare()
    wait(lambda: dock.worker is None, timeout=timeout)
    pump(0.8)


def ct_compare():
    """Sparse-view CT (60 of 180 views): FBP, TV and L1-wavelet next to the reference."""
    viewer, dock = viewer_with_dock("UnrollRecon – sparse-view CT, compare")
    viewer.open_sample("napari-unrollrecon", "ct_phantom")
    dock.input_combo.setCurrentText("CT phantom sinogram (180 views)")
    dock.views_spin.setValue(60)
    check_for_compare(dock, ("fbp", "tv", "l1-wavelet"), "ct")
    hide_sinograms(viewer)  # the user hides the sinogram to look at images only
    compare_to_end(dock)
    viewer.screenshot(str(OUT / "dock_ct_compare.png"), canvas_only=False)
    viewer.close()


def compare_at_stage():
    """MRI phantom: zero-filled, TV and L1-wavelet compared, shown at stage 50, contrast linked."""
    viewer, dock = viewer_with_dock("UnrollRecon – Compare at stage 50, linked contrast")
    viewer.open_sample("napari-unrollrecon", "mri_phantom")  # sampling as the dock opens: cartesian, 25 %
    check_for_compare(dock, ("zero-filled", "tv", "l1-wavelet"), "mri")
    pump(0.5)  # the mask preview settles before Compare hides it
    compare_to_end(dock)
    at = dock.compare_at
    at.at_combo.setCurrentIndex(at.at_combo.findData("stage"))
    at.stage_spin.setValue(50)
    at.link_check.setChecked(True)
    dock.body_scroll.verticalScrollBar().setValue(dock.body_scroll.verticalScrollBar().maximum())
    pump(1.0)
    viewer.screenshot(str(OUT / "dock_compare_at_stage.png"), canvas_only=False)
    viewer.close()


def file_chooser():
    """A MATLAB file with a cine series and its k-t mask: the File part picks frame 3 of the series."""
    path = DATA / "yhao-z-dMRI-Data" / "data_tmi_fast.mat"
    if not path.is_file():
        print(f"skipped the file chooser: {path} not found")
        return
    viewer, dock = viewer_with_dock("UnrollRecon – choosing an array and a slice of a file")
    viewer.open(str(path), plugin="napari-unrollrecon")
    dock.input_combo.setCurrentText("data_tmi_fast:seq")
    dock._input_changed()
    dock.file_chooser.slice_spin.setValue(3)
    dock.file_chooser.open_choice()
    for layer in viewer.layers:
        layer.visible = layer.name.endswith("[slice 3]")
    viewer.reset_view()
    pump(1.0)
    viewer.screenshot(str(OUT / "dock_file_chooser.png"), canvas_only=False)
    viewer.close()


def cgpd_run():
    """CGPD-CSNet's 13 stages on the magnitude MRI phantom at 10 % Cartesian, with e_ℓ beside them."""
    viewer, dock = setup_run("UnrollRecon – CGPD-CSNet, 13 stages", "mri_phantom_magnitude", "cartesian", 0.10,
                             "cgpd-csnet")
    run_to_end(dock)
    viewer.dims.set_current_step(0, 6)  # scrub back to stage 7 of 13
    for layer in viewer.layers:  # what napari's "auto-contrast: once" does, for the frame on screen
        if layer.metadata.get("unrollrecon", {}).get("kind") == "extra":
            lo, hi = np.percentile(np.asarray(layer.data[6]), [1, 99])
            layer.contrast_limits = (float(lo), float(max(hi, lo + 1e-6)))
            layer.colormap = "twilight_shifted"
    pump(0.8)
    viewer.screenshot(str(OUT / "dock_cgpd_stages.png"), canvas_only=False)
    viewer.close()


def gdunet_ct():
    """GDUNet on the CT phantom's sinogram (90 views): stages and the threshold map ε side by side."""
    viewer, dock = viewer_with_dock("UnrollRecon – GDUNet, sparse-view CT, thresholds")
    viewer.open_sample("napari-unrollrecon", "ct_phantom")
    dock.input_combo.setCurrentText("CT phantom sinogram (180 views)")
    dock.views_spin.setValue(90)
    dock.method_combo.setCurrentIndex(dock.method_combo.findData("gdunet"))
    dock.param_form.set_value("threshold_channel", 12)
    dock.side_check.setChecked(True)
    hide_sinograms(viewer)
    pump(0.5)
    dock.run()
    wait(lambda: dock.worker is None, timeout=300)
    pump(1.5)
    viewer.screenshot(str(OUT / "dock_gdunet_ct.png"), canvas_only=False)
    viewer.close()


def gaussian_langevin():
    """The sampler floor streaming: K = 16 posterior samples under the Gaussian prior, mean, |error|, std."""
    viewer, dock = setup_run("UnrollRecon – annealed Langevin, posterior mean and std", "mri_phantom", "radial", 0.25,
                             "gaussian-langevin", samples=16)
    run_to_end(dock, settle=1.5)
    viewer.screenshot(str(OUT / "dock_gaussian_langevin.png"), canvas_only=False)
    viewer.close()


def ddugm_cine():
    """DD-UGM (bundled weights, fast default: 50 L+S stages, then 40 iterations with the TV step) on
    the cine phantom (R ≈ 5 k-t equispaced), K = 2: stage × frame sliders, mean, |error|, std and
    the branch layers."""
    viewer, dock = setup_run("UnrollRecon – DD-UGM on a cine series", "cine_phantom", "equispaced", 0.20, "dd-ugm",
                             samples=2, branches=True)
    run_to_end(dock, timeout=900)
    viewer.dims.set_current_step(1, 5)  # frame 6 of 16
    pump(0.8)
    viewer.screenshot(str(OUT / "dock_ddugm_cine.png"), canvas_only=False)
    viewer.close()


def hggdp_k2():
    """HGGDP (bundled weights, fast default) with K = 2 on a SIAT test slice at the HGGDP radial
    15 % mask file: mean, |error|, std side by side (the phantom when the data root is absent)."""
    viewer, dock = viewer_with_dock("UnrollRecon – HGGDP, K = 2 posterior samples")
    image, mask = DATA / "HGGDP/hggdp_rec/test_image31/test_data_23.mat", DATA / "HGGDP/hggdp_rec/mask/mask_radial_015.mat"
    if image.exists():
        viewer.open(str(image), plugin="napari-unrollrecon")
        viewer.open(str(mask), plugin="napari-unrollrecon")
        pump(0.5)  # the opened image becomes the data layer; the mask file goes to the mask-layer choice
        combo = dock.mask_layer_combo
        combo.setCurrentIndex(next(i for i in range(combo.count()) if "radial_015" in combo.itemText(i)))
    else:
        viewer.open_sample("napari-unrollrecon", "mri_phantom")
        dock.mask_combo.setCurrentText("radial")
        dock.ratio_spin.setValue(0.15)
    choose_method(dock, "hggdp", samples=2)
    run_to_end(dock, timeout=900, settle=1.5)
    viewer.screenshot(str(OUT / "dock_hggdp_k2.png"), canvas_only=False)
    viewer.close()


def roi_profile():
    """Compare on the MRI phantom (cartesian 25 %) with a ROI rectangle and a line drawn on the TV
    panel: the dock's ROI tab scores every panel inside it and plots their profiles."""
    viewer, dock = viewer_with_dock("UnrollRecon – ROI metrics and line profiles on a Compare")
    viewer.open_sample("napari-unrollrecon", "mri_phantom")
    dock.mask_combo.setCurrentText("cartesian")
    dock.ratio_spin.setValue(0.25)
    dock.preview_check.setChecked(False)  # the mask preview would lie over the reference panel
    check_for_compare(dock, ("zero-filled", "tv", "l1-wavelet"), "mri")
    compare_to_end(dock)
    dock.roi.tab.buttons["rectangle"].click()
    roi = viewer.layers["ROI"]
    y, x = dock.panels.layers[2].translate[-2:]  # the TV panel (after the reference and zero-filled)
    roi.add_rectangles(np.array([[y + 150, x + 70], [y + 200, x + 130]]), edge_color="yellow")
    roi.add_lines(np.array([[y + 128, x + 20], [y + 128, x + 236]]), edge_color="cyan")
    roi.mode = "pan_zoom"
    dock.tabs.setCurrentWidget(dock.roi.tab)
    pump(0.5)
    dock.body_scroll.ensureWidgetVisible(dock.roi.tab.plot)  # the dock scrolls: show the tab
    pump(1.0)
    viewer.screenshot(str(OUT / "dock_roi_profile.png"), canvas_only=False)
    viewer.close()


if __name__ == "__main__":
    which = sys.argv[1:] or ["mri", "ct", "compare-at", "chooser", "cgpd", "gdunet", "langevin", "ddugm", "hggdp", "roi"]
    if "mri" in which:
        mri_run()
    if "ct" in which:
        ct_compare()
    if "compare-at" in which:
        compare_at_stage()
    if "chooser" in which:
        file_chooser()
    if "cgpd" in which:
        cgpd_run()
    if "gdunet" in which:
        gdunet_ct()
    if "langevin" in which:
        gaussian_langevin()
    if "ddugm" in which:
        ddugm_cine()
    if "hggdp" in which:
        hggdp_k2()
    if "roi" in which:
        roi_profile()
