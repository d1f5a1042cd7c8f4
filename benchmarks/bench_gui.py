"""GUI responsiveness: time from Run to the first stage on screen, and the longest event-loop
stall during a run, in a real napari viewer (run under Xvfb or on a desktop).

    xvfb-run -a .venv/bin/python benchmarks/bench_gui.py [--size 256] [--methods tv gdunet]

A 5 ms QTimer records when the event loop turns; the longest gap between ticks during the run is
the worst stall a user would feel. "First stage" is when the dock has put stage 1 into its layer
and the canvas has been repainted. Targets (issue 3): first stage <= 0.5 s, stall <= 50 ms.
Learned methods are measured when registered and their weights are available; otherwise listed
as skipped.
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def _pump_until(app, cond, timeout):
    end = time.perf_counter() + timeout
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    return cond()


def measure(viewer, dock, app, method: str, params: dict, timeout: float = 300) -> dict:
    from qtpy.QtCore import QTimer

    idx = dock.method_combo.findData(method)
    if idx < 0:
        return {"method": method, "skipped": "not offered for this modality"}
    dock.method_combo.setCurrentIndex(idx)
    for name, value in params.items():
        dock.param_form.set_value(name, value)
    _pump_until(app, lambda: False, 0.3)
    ticks: list[float] = []
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    timer.start(5)
    t0 = time.perf_counter()
    dock.run()
    if dock.worker is None:
        timer.stop()
        return {"method": method, "skipped": dock.status.text()}
    shown = _pump_until(app, lambda: dock.active.get("stack") is not None and len(dock.active["stack"]) >= 1, timeout)
    viewer.window._qt_viewer.canvas.native.repaint() if hasattr(viewer.window, "_qt_viewer") else None
    t_first = time.perf_counter() - t0
    _pump_until(app, lambda: dock.worker is None, timeout)
    t_end = time.perf_counter()
    timer.stop()
    run_ticks = np.array([t for t in ticks if t0 <= t <= t_end])
    gaps = np.diff(np.concatenate([[t0], run_ticks, [t_end]]))
    after_first = np.diff(run_ticks[run_ticks >= t0 + t_first]) if shown else np.array([0.0])
    last = dock.active.get("last")
    return {
        "method": method,
        "stages": last.stage if last else 0,
        "run_s": round(t_end - t0, 3),
        "first_stage_s": round(t_first, 3) if shown else None,
        "longest_stall_ms": round(1000 * float(gaps.max()), 1),
        "longest_stall_after_first_ms": round(1000 * float(after_first.max()), 1) if after_first.size else None,
        "median_tick_ms": round(1000 * float(np.median(np.diff(run_ticks))), 1) if run_ticks.size > 1 else None,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--methods", nargs="*", default=["tv", "zero-filled"])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from napari_unrollrecon import _sample_data
    from napari_unrollrecon.engine import registry

    torch.set_num_threads(args.threads)
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    _, dock = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    for data, kwargs, _ in _sample_data.mri_sample(args.size):
        viewer.add_image(data, **kwargs)
    _pump_until(app, lambda: False, 1.0)

    methods = list(args.methods)
    learned = [n for n in registry.names() if _safe_learned(registry, n)]
    methods += [n for n in learned if n not in methods]
    rows = []
    for name in methods:
        params = {"iterations": args.iterations} if name in ("tv", "l1-wavelet") else {}
        rows.append(measure(viewer, dock, app, name, params))
    if not learned:
        rows.append({"method": "(learned)", "skipped": "no learned method registered yet"})
    print(f"GUI responsiveness, MRI phantom {args.size}², {torch.get_num_threads()} torch thread(s)")
    for r in rows:
        print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    viewer.close()
    return rows


def _safe_learned(registry, name):
    try:
        return registry.get(name).learned
    except Exception:  # noqa: BLE001
        return False


if __name__ == "__main__":
    main()
