"""Time the CT projector's backends against scikit-image on this machine (a script, not a test).

    python benchmarks/bench_ct.py [--size 256] [--views 60] [--repeats 7] [--threads 2]
                                  [--backends sparse grid] [--no-skimage]
    python benchmarks/bench_ct.py --cold-warm [--size 512 --views 180] [--image AAPM.npy]

For each backend of :class:`RadonOperator` (``sparse``: precomputed CSR matrices, ``grid``: the
matrix-free ``grid_sample`` path): ``A``, exact adjoint ``AH``, ``A + AH`` and ``A + FBP``
(ramp), plus the sparse build time and matrix memory; scikit-image's ``radon`` /
``iradon(filter_name=None)`` / ``iradon`` as the baseline. All in one process, the candidates
interleaved repeat by repeat so a busy shared machine slows them alike; medians of ``--repeats``
runs after one warm-up (which builds the matrices / grids). Prints a markdown table.

``--cold-warm``: the sparse matrices' build on first use (an empty disk cache: build + save)
against a later process's load from the disk cache (:mod:`napari_unrollrecon.physics.ct_cache`,
in a temporary folder), and with ``--image`` the time from nothing to FBP's first stage (problem
built from the image as the dock does it, then stage 1 with its residual) in both cases.
"""

from __future__ import annotations

import argparse
import resource
import time
from pathlib import Path

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from napari_unrollrecon.physics.ct import RadonOperator


def interleaved_medians(fns: dict, repeats: int) -> dict:
    """Median seconds of each callable, run round-robin after one warm-up each."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: float(np.median(t)) for name, t in times.items()}


def _first_stage(image, views) -> float:
    """Seconds from nothing to FBP's first stage (with its residual), as the dock's worker does it."""
    from napari_unrollrecon.engine import registry
    from napari_unrollrecon.engine.pipeline import build_problem
    from napari_unrollrecon.engine.stream import stream

    t0 = time.perf_counter()
    problem, _ = build_problem(image, "image", "ct", views=views)
    problem.operator.build()
    update = next(stream(registry.get("fbp"), problem, {}, reference=image))
    update.residual
    return time.perf_counter() - t0


def _fresh(folder: str, empty: bool) -> None:
    """As a new process: no matrices in memory; ``empty`` also empties the disk cache."""
    from napari_unrollrecon.physics import ct

    ct._SPARSE_CACHE.clear()
    for p in Path(folder).iterdir() if empty else ():
        p.unlink()


def cold_warm(size: int, views: int, image_path: str | None = None) -> None:
    """First use (empty disk cache: build + save) against a later use (load from the disk cache)."""
    import os
    import tempfile

    from napari_unrollrecon.physics import ct_cache

    image = None if image_path is None else np.load(image_path).astype(np.float32)
    size = size if image is None else image.shape[-1]
    with tempfile.TemporaryDirectory() as folder:
        os.environ[ct_cache.ENV_DIR] = folder
        for case, empty in (("cold (build + save)", True), ("warm (disk cache)", False)):
            _fresh(folder, empty)
            t0 = time.perf_counter()
            RadonOperator(size, n_views=views)._matrices(torch.float32)
            line = f"{size}², {views} views, {case}: matrices {time.perf_counter() - t0:.2f} s"
            if image is not None:
                _fresh(folder, empty)
                line += f", FBP first stage {_first_stage(image, views):.2f} s"
            print(line)
        print(f"cache file {sum(p.stat().st_size for p in Path(folder).iterdir()) / 2**20:.0f} MB")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--views", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--backends", nargs="+", default=["sparse", "grid"], choices=["sparse", "grid"])
    ap.add_argument("--no-skimage", action="store_true", help="skip the scikit-image baseline")
    ap.add_argument("--cold-warm", action="store_true", help="time the first build against a disk-cache load")
    ap.add_argument("--image", default=None, help="--cold-warm: also time FBP's first stage on this 2D image")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.cold_warm:
        return cold_warm(args.size, args.views, args.image)

    image = resize(shepp_logan_phantom(), (args.size, args.size), anti_aliasing=True)
    ops = {b: RadonOperator(args.size, n_views=args.views, device=args.device, backend=b)
           for b in args.backends}
    device = next(iter(ops.values())).device
    x = torch.as_tensor(image, dtype=torch.float32, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)

    build = {}
    if "sparse" in ops:
        t0 = time.perf_counter()
        mats = ops["sparse"]._matrices(torch.float32)
        sync()
        build = {"seconds": time.perf_counter() - t0, "mb": mats.nbytes / 2**20, "nnz": mats.nnz}

    def timed(fn):
        def run():
            fn()
            sync()
        return run

    fns = {}
    for b, op in ops.items():
        y = op.A(x)
        fns[(b, "A")] = timed(lambda op=op: op.A(x))
        fns[(b, "AH")] = timed(lambda op=op, y=y: op.AH(y))
        fns[(b, "A + AH")] = timed(lambda op=op: op.AH(op.A(x)))
        fns[(b, "A + FBP")] = timed(lambda op=op: op.fbp(op.A(x)))
    if not args.no_skimage:
        theta = next(iter(ops.values())).angles
        sino = radon(image, theta, circle=False)
        fns[("skimage", "A")] = lambda: radon(image, theta, circle=False)
        fns[("skimage", "AH")] = lambda: iradon(sino, theta, filter_name=None, circle=False)
        fns[("skimage", "A + AH")] = lambda: iradon(radon(image, theta, circle=False), theta,
                                                    filter_name=None, circle=False)
        fns[("skimage", "A + FBP")] = lambda: iradon(radon(image, theta, circle=False), theta,
                                                     circle=False)
    med = interleaved_medians(fns, args.repeats)

    op = next(iter(ops.values()))
    print(f"\n{args.size}² image, {args.views} views, {op.n_detectors} detectors, device {device}, "
          f"torch threads {args.threads}, median of {args.repeats} (interleaved)\n")
    columns = list(dict.fromkeys(name for name, _ in fns))
    print("| operation | " + " | ".join(f"{c} ms" for c in columns) + " |")
    print("|---|" + "---:|" * len(columns))
    for what in ("A", "AH", "A + AH", "A + FBP"):
        cells = [f"{med[(c, what)] * 1e3:.1f}" if (c, what) in med else "" for c in columns]
        print(f"| {what} | " + " | ".join(cells) + " |")
    if "sparse" in ops and "grid" in ops:
        speedup = med[("grid", "A + AH")] / med[("sparse", "A + AH")]
        print(f"\nsparse vs grid, A + AH: {speedup:.1f}× faster")
    if build:
        print(f"sparse build {build['seconds']:.2f} s, matrices {build['mb']:.0f} MB "
              f"({build['nnz'] / 1e6:.1f} M non-zeros per direction)")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**10  # kB on Linux
    print(f"peak resident memory of this process: {peak:.0f} MB")


if __name__ == "__main__":
    main()
