"""Seconds per 256² slice and FLOPs per slice of the learned methods' configurations.

    .venv/bin/python benchmarks/bench_learned_speed.py [--threads 2] [--repeats 3]

FLOPs: ``torch.utils.flop_counter`` over one forward pass (convolutions and matrix products, 2 per
multiply-add; FFTs, col2im and element-wise work are not counted, so it is a lower bound). Time:
median of ``repeats`` forward passes after one warm-up, batch 1, random weights (time does not
depend on their values). Run it on a quiet machine: the numbers are wall time.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
from torch.utils.flop_counter import FlopCounterMode

from napari_unrollrecon.methods import cgpd_csnet, gdunet
from napari_unrollrecon.physics.fft import fft2c
from napari_unrollrecon.physics.masks import make_mask


def _mri_inputs(n: int):
    img = torch.rand(1, n, n)
    mask = torch.from_numpy(make_mask("cartesian", (n, n), 0.2, seed=0))
    return mask * fft2c(img.to(torch.complex64)), mask


def cases(n: int):
    y, mask = _mri_inputs(n)
    for preset in ("paper", "cpu13"):
        model = cgpd_csnet.build_model(cgpd_csnet.CONFIGS[preset]).eval()
        yield f"cgpd-csnet {preset}", model, lambda m=model: m(y, mask, torch.tensor([0.2]))
    for preset in ("paper", "cpu"):
        model = gdunet.build_model({**gdunet.CONFIGS[preset], "modality": "mri", "complex": preset == "cpu"}).eval()
        yield f"gdunet {preset} (MRI)", model, lambda m=model: m(y, mask)
        model = gdunet.build_model({**gdunet.CONFIGS[preset], "modality": "ct"}).eval()
        op = gdunet.ct_operator(n, 60, "cpu")
        sino = op.A(torch.rand(1, n, n))
        yield f"gdunet {preset} (CT, 60 views)", model, lambda m=model, op=op, s=sino: m(s, op)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--size", type=int, default=256)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(f"| configuration | parameters | GFLOP / {args.size}² slice | s / slice ({args.threads} threads) | GFLOP/s |")
    print("|---|---|---|---|---|")
    for name, model, forward in cases(args.size):
        with torch.no_grad():
            with FlopCounterMode(display=False) as fc:
                forward()
            forward()
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                forward()
                times.append(time.perf_counter() - t0)
        gflop, sec = fc.get_total_flops() / 1e9, float(np.median(times))
        params = sum(p.numel() for p in model.parameters())
        print(f"| {name} | {params:,} | {gflop:.1f} | {sec:.2f} | {gflop / sec:.0f} |", flush=True)


if __name__ == "__main__":
    main()
