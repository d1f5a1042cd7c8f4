"""Latency of a live tweak in the dock: a parameter changed after a run, until the re-run's last
stage is on screen (the dock debounces the change, then resumes from the stage it affects on the
cached stage inputs).

    xvfb-run -a .venv/bin/python benchmarks/bench_tweak.py [--method gdunet] [--size 256]

Uses the bundled weights and the MRI phantom (for GDUNet: also the CT phantom's sinogram at 90
views). Prints, per tweak, the seconds from the change to the re-run's final frame on screen
(including the dock's debounce of the change).
"""

from __future__ import annotations

import argparse
import time

TWEAKS = {
    "gdunet": [("eps_scale", 2.0), ("eps_scale_5", 0.5), ("eps_scale_7", 3.0), ("tau_lambda", 0.3)],
    "cgpd-csnet": [("eta_scale", 1.5), ("beta_scale_7", 2.0), ("eta_scale_13", 0.5), ("condition_ratio", 0.3)],
}


def _pump_until(app, cond, timeout=120.0):
    end = time.perf_counter() + timeout
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
    return cond()


def measure(viewer, dock, app, method, sample, views=None):
    viewer.layers.clear()
    viewer.open_sample("napari-unrollrecon", sample)
    if views:
        dock.input_combo.setCurrentText(next(layer.name for layer in viewer.layers if "sinogram" in layer.name))
        dock.views_spin.setValue(views)
    else:
        dock.ratio_spin.setValue(0.2)
    dock.method_combo.setCurrentIndex(dock.method_combo.findData(method))
    dock.run()
    _pump_until(app, lambda: dock.worker is None and dock.record is not None)
    rows = []
    for name, value in TWEAKS[method]:
        before = dock.record
        t0 = time.perf_counter()
        dock.param_form.set_value(name, value)
        _pump_until(app, lambda: dock.record is not before and dock.worker is None)
        _pump_until(app, lambda: not dock._dirty, timeout=5)
        app.processEvents()
        rows.append((name, value, time.perf_counter() - t0, dock.status.text().splitlines()[0][:110]))
        reset = dock.record  # back to the default: wait for that (debounced) re-run to finish too
        dock.param_form.set_value(name, dict(dock._spec().defaults()).get(name))
        _pump_until(app, lambda: dock.record is not reset and dock.worker is None)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="gdunet", choices=sorted(TWEAKS))
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    torch.set_num_threads(args.threads)
    viewer = napari.Viewer(show=True)
    _, dock = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    app = QApplication.instance()
    cases = [("mri_phantom_magnitude", None)]
    if args.method == "gdunet":
        cases = [("mri_phantom", None), ("ct_phantom", 90)]
    print("| method | data | change | seconds to the re-run's last frame | dock status |")
    print("|---|---|---|---|---|")
    for sample, views in cases:
        for name, value, seconds, status in measure(viewer, dock, app, args.method, sample, views):
            print(f"| {args.method} | {sample}{f' ({views} views)' if views else ''} | {name} = {value} | "
                  f"{seconds:.2f} | {status} |", flush=True)
    viewer.close()


if __name__ == "__main__":
    main()
