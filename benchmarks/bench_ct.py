"""Time the CT projector against scikit-image on this machine (a script, not a test).

    python benchmarks/bench_ct.py [--size 256] [--views 60] [--repeats 7] [--threads 2]

Rows: our forward + exact adjoint (``A`` then ``AH``) vs ``skimage.transform.radon`` +
``iradon(filter_name=None)`` (unfiltered back-projection), and our forward + FBP vs radon +
``iradon`` (ramp). Medians of ``--repeats`` runs after one warm-up (which also builds and caches
the sampling grids); all measured in the same process. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from skimage.data import shepp_logan_phantom
from skimage.transform import iradon, radon, resize

from napari_unrollrecon.physics.ct import RadonOperator


def median_seconds(fn, repeats: int) -> float:
    fn()  # warm-up: grid caches, allocator, FFT plans
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--views", type=int, default=60)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)

    image = resize(shepp_logan_phantom(), (args.size, args.size), anti_aliasing=True)
    op = RadonOperator(args.size, n_views=args.views, device=args.device)
    x = torch.as_tensor(image, dtype=torch.float32, device=op.device)
    theta = op.angles
    sync = torch.cuda.synchronize if op.device.type == "cuda" else (lambda: None)

    def ours_adjoint():
        op.AH(op.A(x))
        sync()

    def ours_fbp():
        op.fbp(op.A(x))
        sync()

    rows = [
        ("A + AH (exact adjoint)", median_seconds(ours_adjoint, args.repeats),
         "radon + iradon(filter=None)",
         median_seconds(lambda: iradon(radon(image, theta, circle=False), theta, filter_name=None,
                                       circle=False), args.repeats)),
        ("A + FBP (ramp)", median_seconds(ours_fbp, args.repeats),
         "radon + iradon(ramp)",
         median_seconds(lambda: iradon(radon(image, theta, circle=False), theta, circle=False),
                        args.repeats)),
    ]
    print(f"\n{args.size}² image, {args.views} views, {op.n_detectors} detectors, device {op.device}, "
          f"torch threads {args.threads}, median of {args.repeats}\n")
    print("| ours | ms | skimage | ms | speed-up |")
    print("|---|---:|---|---:|---:|")
    for name, ours, ref_name, ref in rows:
        print(f"| {name} | {ours * 1e3:.1f} | {ref_name} | {ref * 1e3:.1f} | {ref / ours:.2f}× |")


if __name__ == "__main__":
    main()
