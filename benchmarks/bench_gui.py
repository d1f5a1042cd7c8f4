"""GUI responsiveness: time from Run to the first stage on screen, and the longest event-loop
stall during a run, in a real napari viewer (run under Xvfb or on a desktop).

    xvfb-run -a .venv/bin/python benchmarks/bench_gui.py [--size 256] [--methods tv zero-filled]

A 5 ms QTimer records when the event loop turns; the longest gap between ticks from Run until
0.3 s after the run ended is the worst stall a user would feel, and the main thread's CPU time
during that gap tells work from waiting (a loaded machine deschedules the process; the worker
thread holds the GIL at times). "First stage" is when stage 1 has reached a reconstruction layer
and the canvas has been repainted; "worker stage 1" when the worker thread had it. "Cold" is a
method's first run in the session (its layers are created, its module imported); "warm" the
median of the following runs (layers reused). The dock's own share is measured by timing its
slots; "idle repaint" is one canvas repaint with nothing changed (napari + OpenGL alone).
Targets (issue 3): first stage <= 0.5 s, stall <= 50 ms. The longest stall while the method is
chosen (before Run: the parameter form's rebuild) is reported beside each run as
``choosing_the_method_stall_ms``. Learned methods are measured when
registered and their weights are available; otherwise listed as skipped.

``--dock module:Class`` measures another dock implementation in the same session (e.g. an
older version on PYTHONPATH), so variants are compared under the same machine load.
"""

from __future__ import annotations

import argparse
import importlib
import os
import time

import numpy as np

TAIL = 0.3  # seconds after the run still counted (work the dock does when a run ends)


def _pump_until(app, cond, timeout):
    end = time.perf_counter() + timeout
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)
    return cond()


def _is_recon(layer) -> bool:
    return layer.metadata.get("unrollrecon", {}).get("kind") == "reconstruction"


class _FirstStage:
    """Notes when a reconstruction layer first receives stage data after ``arm()``."""

    def __init__(self, viewer):
        self.viewer, self.t = viewer, None
        viewer.layers.events.inserted.connect(self._inserted)
        for layer in viewer.layers:
            self._watch(layer)

    def arm(self):
        self.t = None

    def _watch(self, layer):
        if _is_recon(layer):
            layer.events.data.connect(self._data)

    def _inserted(self, event):
        self._watch(event.value)
        if _is_recon(event.value) and np.any(np.asarray(event.value.data)):
            self._data()

    def _data(self, event=None):
        if self.t is not None:
            return  # only the first stage is timed: no scan of the stack on later data events
        layer = getattr(event, "source", None)
        if layer is None or np.any(np.asarray(layer.data)):  # blank placeholder frames are not a stage
            self.t = time.perf_counter()


TOP_LEVEL = ("_flush", "_progress_tick", "_refresh_if_dirty", "run", "_on_dims", "_end_warm", "update_mask_preview")


def _timed_slots(dock, names=(*TOP_LEVEL, "_on_frame", "_refresh_display", "_on_returned", "_on_finished",
                              "_start", "_on_compare_outcome")):
    """Wrap the dock's slots to record how long each call takes (the dock's own share)."""
    calls = []
    for name in names:
        fn = getattr(dock, name, None)
        if fn is None:
            continue

        def wrapped(*a, _fn=fn, _name=name, **k):
            t0 = time.perf_counter()
            try:
                return _fn(*a, **k)
            finally:
                calls.append((t0, time.perf_counter() - t0, _name))

        setattr(dock, name, wrapped)
    return calls


_WORKER_FIRST: list[float] = []


def _time_worker_first_frame():
    """Record when the worker yields its first frame (problem built, stage 1 computed)."""
    from napari_unrollrecon._widgets import _controller as C

    original = C.drive

    def drive(*args, **kwargs):
        gen = original(*args, **kwargs)
        value = None
        try:
            frame = gen.send(None)
            _WORKER_FIRST.append(time.perf_counter())
            while True:
                value = yield frame
                frame = gen.send(value)
        except StopIteration as stop:
            return stop.value

    C.drive = drive


def idle_repaint_ms(viewer, app, n: int = 5) -> float:
    canvas = viewer.window._qt_viewer.canvas.native
    times = []
    for _ in range(n):
        _pump_until(app, lambda: False, 0.05)
        t0 = time.perf_counter()
        canvas.repaint()
        times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 1)


def measure(viewer, dock, app, method: str, params: dict, first: _FirstStage, calls: list,
            timeout: float = 300) -> dict:
    from qtpy.QtCore import QTimer

    idx = dock.method_combo.findData(method)
    if idx < 0:
        return {"method": method, "skipped": "not offered for this modality"}
    ticks: list[tuple[float, float]] = []  # (wall clock, main-thread CPU time)
    timer = QTimer()
    timer.timeout.connect(lambda: ticks.append((time.perf_counter(), time.thread_time())))
    timer.start(5)
    t_choice = time.perf_counter()
    dock.method_combo.setCurrentIndex(idx)
    for name, value in params.items():
        dock.param_form.set_value(name, value)
    _pump_until(app, lambda: False, 0.5)
    choice_gaps = np.diff([t_choice, *[t for t, _ in ticks]])
    choice_stall = round(1000 * float(choice_gaps.max()), 1) if choice_gaps.size else None
    ticks.clear()
    cpu0 = time.thread_time()
    first.arm()
    calls.clear()
    _WORKER_FIRST.clear()
    t0 = time.perf_counter()
    dock.run()
    if dock.worker is None:
        timer.stop()
        return {"method": method, "skipped": dock.status.text()}
    _pump_until(app, lambda: first.t is not None, timeout)
    viewer.window._qt_viewer.canvas.native.repaint()  # "on screen": the frame has been drawn
    t_first = time.perf_counter() - t0 if first.t is not None else None
    _pump_until(app, lambda: dock.worker is None, timeout)
    t_end = time.perf_counter()
    _pump_until(app, lambda: False, TAIL)
    timer.stop()
    kept = [(t, c) for t, c in ticks if t0 <= t <= t_end + TAIL]
    run_ticks = np.array([t for t, _ in kept])
    cpu = np.array([c for _, c in kept])
    gaps = np.diff(np.concatenate([[t0], run_ticks]))
    cpu_gaps = np.diff(np.concatenate([[cpu0], cpu]))
    worst = int(np.argmax(gaps)) if gaps.size else None
    last = dock.active.last
    ours = [(d, name) for t, d, name in calls if t0 <= t <= t_end + TAIL]
    top = [(d, name) for d, name in ours if name in TOP_LEVEL]
    parts: dict[str, float] = {}
    for d, name in ours:
        if name not in TOP_LEVEL:
            parts[name] = max(parts.get(name, 0.0), d)
    slowest = sorted(parts.items(), key=lambda kv: -kv[1])[:2]
    return {
        "method": method,
        "stages": last.stage if last else 0,
        "run_s": round(t_end - t0, 3),
        "first_stage_s": round(t_first, 3) if t_first is not None else None,
        "worker_stage1_s": round(_WORKER_FIRST[0] - t0, 3) if _WORKER_FIRST else None,
        "longest_stall_ms": round(1000 * float(gaps.max()), 1) if gaps.size else None,
        "its_main_thread_cpu_ms": round(1000 * float(cpu_gaps[worst]), 1) if worst is not None else None,
        "median_tick_ms": round(1000 * float(np.median(np.diff(run_ticks))), 1) if run_ticks.size > 1 else None,
        "longest_dock_slot_ms": round(1000 * max(top)[0], 1) if top else None,
        "slot": max(top)[1] if top else None,
        "slowest_parts_ms": {k: round(1000 * v) for k, v in slowest},
        "choosing_the_method_stall_ms": choice_stall,  # outside the run: the form's rebuild
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--methods", nargs="*", default=["tv", "zero-filled"])
    ap.add_argument("--iterations", type=int, default=50)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeats", type=int, default=4, help="runs per method (the first is 'cold')")
    ap.add_argument("--dock", nargs="*", default=[], help="module:Class of other dock versions to measure too")
    ap.add_argument("--only", action="store_true", help="measure only --methods (no learned methods added)")
    ap.add_argument("--hide-inputs", action="store_true", help="diagnosis: hide the sample's layers (each drawn layer costs)")
    ap.add_argument("--keep-inputs", action="store_true",
                    help="A/B: do not hide the layers under a streaming result (the dock does since 2026-12-07)")
    ap.add_argument("--no-text", choices=["status", "caption", "both"], default=None,
                    help="diagnosis: no status-line and/or canvas-caption updates during runs")
    ap.add_argument("--no-pbar", action="store_true",
                    help="diagnosis: measure without the dock's progress-bar ticks")
    args = ap.parse_args(argv)

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from napari_unrollrecon import _sample_data
    from napari_unrollrecon.engine import registry

    torch.set_num_threads(args.threads)
    _time_worker_first_frame()
    load0 = f"{os.getloadavg()[0]:.1f}"
    learned = [n for n in registry.names() if _safe_learned(registry, n)]
    methods = list(args.methods) + ([] if args.only else [n for n in learned if n not in args.methods])
    rows = []
    for dock_path in [None, *args.dock]:
        viewer = napari.Viewer(show=True)
        viewer.window.resize(1500, 950)
        app = QApplication.instance()
        if dock_path is None:
            _, dock = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
            label = "current"
        else:
            module, cls = dock_path.split(":")
            dock = getattr(importlib.import_module(module), cls)(viewer)
            viewer.window.add_dock_widget(dock, area="right")
            label = dock_path
        for data, kwargs, _ in _sample_data.mri_sample(args.size):
            viewer.add_image(data, **kwargs)
        if args.hide_inputs:
            for layer in viewer.layers:
                layer.visible = False
        _pump_until(app, lambda: False, 2.0)
        if args.keep_inputs:
            dock.occluded.hide_under = lambda result: []
            label += " (inputs kept visible)"
        if args.no_text in ("status", "both"):
            dock._say = lambda *a, **k: None
        if args.no_text in ("caption", "both"):
            dock._caption = lambda *a, **k: None
        if args.no_text:
            label += f" (no {args.no_text} text updates)"
        if args.no_pbar:
            dock._progress_tick = lambda: None
            label += " (no progress bar)"
        first, calls = _FirstStage(viewer), _timed_slots(dock)
        rows.append({"dock": label, "idle_repaint_ms": idle_repaint_ms(viewer, app)})
        for name in methods:
            params = {"iterations": args.iterations} if name in ("tv", "l1-wavelet") else {}
            warm = []
            for rep in range(args.repeats):
                row = measure(viewer, dock, app, name, params, first, calls)
                if "skipped" in row:
                    rows.append({"dock": label, **row})
                    break
                if rep == 0:
                    rows.append({"dock": label, "run": "cold", **row})
                else:
                    warm.append(row)
            if warm:
                rows.append({"dock": label, "run": f"warm (median of {len(warm)})", **_median_row(warm)})
        rows.append({"dock": label, "idle_repaint_ms (after runs)": idle_repaint_ms(viewer, app)})
        viewer.close()
    if not learned:
        rows.append({"method": "(learned)", "skipped": "no learned method registered yet"})
    from napari_unrollrecon._widgets._worker_nice import NICE

    print(f"GUI responsiveness, MRI phantom {args.size}², {torch.get_num_threads()} torch thread(s), worker nice {NICE}, "
          f"load average {load0} -> {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    for r in rows:
        print("  " + ", ".join(f"{k}={v}" for k, v in r.items()))
    return rows


def _median_row(rows: list[dict]) -> dict:
    """Median of each numeric field over repeated runs (the machine's load varies run to run)."""
    out = {"method": rows[0]["method"]}
    for key, value in rows[0].items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            vals = [r[key] for r in rows if isinstance(r.get(key), (int, float))]
            out[key] = round(float(np.median(vals)), 3)
    out["longest_stall_ms (each)"] = [r["longest_stall_ms"] for r in rows]
    out["slots"] = [r.get("slot") for r in rows]
    return out


def _safe_learned(registry, name):
    try:
        return registry.get(name).learned
    except Exception:  # noqa: BLE001
        return False


if __name__ == "__main__":
    main()
