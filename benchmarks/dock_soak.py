"""Dock soak: many Run/Stop cycles in a real napari viewer, then the viewer closed mid-run.

    xvfb-run -a .venv/bin/python benchmarks/dock_soak.py [--cycles 100] [--size 128]
        [--methods tv l1-wavelet zero-filled] [--out benchmarks/results/dock_soak.md]

Each cycle picks a method in turn, presses Run, waits a random 0-0.4 s (seeded) so Stop lands
at any point - before the first stage, mid-run, or after a short run finished by itself -
presses Stop and waits for the worker to end. After every cycle it records the process's
thread count, Qt's busy pool threads, the resident memory (RSS) and the number of layers. A
leak shows as a count that grows with the cycle number: the report gives first/last values and
the slope of a straight-line fit over the second half of the cycles (the first runs create each
method's layers and import its modules). Finally a long run is started and the viewer closed
while it streams: the worker must end within 5 s, no exception may reach ``sys.excepthook``
and the thread count must return to its value before the run.

Promises checked (issue 14): no thread or layer growth, RSS growth < 1 MB per cycle over the
second half, Stop always ends the worker (longest wait reported), closing mid-run is clean.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import time

import numpy as np


def _pump(app, cond=lambda: False, timeout=1.0) -> bool:
    end = time.perf_counter() + timeout
    while not cond() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.002)
    return cond()


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def _os_threads() -> int:
    """Threads of the process as the OS sees them (Qt's pool threads are not Python threads)."""
    import psutil

    return psutil.Process().num_threads()


def _pool_busy() -> int:
    from qtpy.QtCore import QThreadPool

    return QThreadPool.globalInstance().activeThreadCount()


def _use(dock, method: str, **params) -> None:
    idx = dock.method_combo.findData(method)
    if idx < 0:
        raise SystemExit(f"method {method!r} is not offered by the dock")
    dock.method_combo.setCurrentIndex(idx)
    for name, value in params.items():
        dock.param_form.set_value(name, value)


PARAMS = {"tv": {"iterations": 300}, "l1-wavelet": {"iterations": 300}}


def soak(viewer, dock, app, methods, cycles: int, seed: int = 0) -> dict:
    """Run/Stop ``cycles`` times; returns per-cycle samples and the longest Stop wait."""
    rng = random.Random(seed)
    rows, stop_waits, hung = [], [], 0
    for i in range(cycles):
        _use(dock, methods[i % len(methods)], **PARAMS.get(methods[i % len(methods)], {}))
        dock.run()
        _pump(app, timeout=rng.uniform(0.0, 0.4))
        t0 = time.perf_counter()
        dock.stop()
        if not _pump(app, lambda: dock.worker is None, timeout=10.0):
            hung += 1
        stop_waits.append(time.perf_counter() - t0)
        _pump(app, timeout=0.05)
        rows.append({"cycle": i + 1, "threads": _os_threads(), "pool_busy": _pool_busy(),
                     "rss_mb": _rss_mb(), "layers": len(viewer.layers)})
    return {"rows": rows, "stop_waits": stop_waits, "hung": hung}


def close_mid_run(app, size: int) -> dict:
    """Start a long run in a fresh viewer and close the viewer while the worker streams."""
    import napari

    from napari_unrollrecon import _sample_data

    errors = []
    hook = sys.excepthook
    sys.excepthook = lambda *exc: errors.append(exc[1])
    try:
        viewer = napari.Viewer(show=True)
        _, dock = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
        for data, kwargs, _ in _sample_data.mri_sample(size):
            viewer.add_image(data, **kwargs)
        _pump(app, timeout=0.5)
        threads_before = _os_threads()
        _use(dock, "tv", iterations=5000)
        dock.run()
        streamed = _pump(app, lambda: dock.active is not None and dock.active.last is not None, timeout=20)
        t0 = time.perf_counter()
        viewer.close()
        ended = _pump(app, lambda: _pool_busy() == 0, timeout=5.0)
        waited = time.perf_counter() - t0
        _pump(app, timeout=0.5)
        return {"streamed_before_close": streamed, "worker_ended": ended, "seconds_to_end": round(waited, 2),
                "threads_before": threads_before, "threads_after": _os_threads(),
                "exceptions": [f"{type(e).__name__}: {e}" for e in errors]}
    finally:
        sys.excepthook = hook


def _slope(values) -> float:
    half = values[len(values) // 2:]
    if len(half) < 2:
        return 0.0
    return float(np.polyfit(np.arange(len(half)), half, 1)[0])


def summarise(result: dict, closing: dict) -> tuple[list[str], bool]:
    rows = result["rows"]
    lines, ok = [], result["hung"] == 0
    for key, unit, limit in (("threads", "", 0.05), ("pool_busy", "", 0.05), ("layers", "", 0.05),
                             ("rss_mb", " MB", 1.0)):
        vals = [r[key] for r in rows]
        slope = _slope(vals)
        good = slope < limit
        ok &= good
        lines.append(f"| {key} | {vals[0]:.1f}{unit} | {vals[-1]:.1f}{unit} | {max(vals):.1f}{unit} | "
                     f"{slope:+.3f}{unit}/cycle | < {limit} | {'ok' if good else 'FAIL'} |")
    waits = result["stop_waits"]
    clean = (closing["worker_ended"] and not closing["exceptions"]
             and closing["threads_after"] <= closing["threads_before"])
    ok &= clean
    tail = [
        "",
        f"Stop → worker ended: median {np.median(waits):.3f} s, longest {max(waits):.3f} s, "
        f"runs that did not end within 10 s: {result['hung']}.",
        "",
        f"Viewer closed mid-run: streamed before close {closing['streamed_before_close']}, worker ended "
        f"{closing['worker_ended']} after {closing['seconds_to_end']} s, threads {closing['threads_before']} → "
        f"{closing['threads_after']}, exceptions: {closing['exceptions'] or 'none'} — {'ok' if clean else 'FAIL'}.",
    ]
    return lines + tail, ok


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--size", type=int, default=128)
    ap.add_argument("--methods", nargs="+", default=["tv", "l1-wavelet", "zero-filled"])
    ap.add_argument("--threads", type=int, default=1, help="torch threads")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default="")
    args = ap.parse_args(argv)

    import napari
    import torch
    from qtpy.QtWidgets import QApplication

    from napari_unrollrecon import _sample_data

    torch.set_num_threads(args.threads)
    load0 = os.getloadavg()[0]
    viewer = napari.Viewer(show=True)
    app = QApplication.instance()
    _, dock = viewer.window.add_plugin_dock_widget("napari-unrollrecon", "Reconstruction")
    for data, kwargs, _ in _sample_data.mri_sample(args.size):
        viewer.add_image(data, **kwargs)
    _pump(app, timeout=1.0)
    t0 = time.perf_counter()
    result = soak(viewer, dock, app, args.methods, args.cycles, args.seed)
    elapsed = time.perf_counter() - t0
    viewer.close()
    _pump(app, timeout=0.5)
    closing = close_mid_run(app, args.size)
    lines, ok = summarise(result, closing)
    head = [
        f"# Dock soak: {args.cycles} Run/Stop cycles ({', '.join(args.methods)}; MRI sample {args.size}²)",
        "",
        f"`xvfb-run -a .venv/bin/python benchmarks/dock_soak.py --cycles {args.cycles} --size {args.size}` — "
        f"{elapsed:.0f} s, {torch.get_num_threads()} torch thread(s), load average {load0:.1f} → "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs. Stop lands 0–0.4 s after Run (seed {args.seed}).",
        "",
        "| per cycle | first | last | max | slope (2nd half) | limit | |",
        "|---|---|---|---|---|---|---|",
    ]
    text = "\n".join(head + lines) + f"\n\nResult: {'PASS' if ok else 'FAIL'}\n"
    print(text)
    if args.out:
        with open(args.out, "w") as fh:
            fh.write(text)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
