"""HGGDP's posterior spread against its error: K samples per slice, the pixel-wise std of their
magnitudes against |mean − reference|, as a Pearson correlation per slice (and the PSNR of the
K-sample mean), for the fast default's temperature and for T = 1 (the sampler as derived).

    .venv/bin/python benchmarks/hggdp_uncertainty.py [--samples 4] [--limit 3] [--mask radial_015]
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import numpy as np
import torch

from napari_unrollrecon.engine import io, problems, registry
from napari_unrollrecon.engine.stream import run
from napari_unrollrecon.methods import hggdp

DATA = Path(os.environ.get("UNROLLRECON_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--mask", default="radial_015")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mask, _ = io.read_mask(DATA / f"HGGDP/hggdp_rec/mask/mask_{args.mask}.mat")
    items = io.read_many(DATA / "HGGDP/hggdp_rec/test_image31", kind="image")[: args.limit]
    print(f"test31 slices 1-{len(items)}, mask_{args.mask}, K = {args.samples}, load {os.getloadavg()[0]:.1f}")
    print("| temperature | Pearson r (std vs |error|), mean over slices | PSNR of the K-sample mean (dB) |")
    print("|---|---|---|")
    for temp in (hggdp.TEMPERATURE, 1.0):
        rs, ps = [], []
        for it in items:
            ref = np.abs(it.data)
            res = run(registry.get("hggdp"), problems.mri_from_image(it.data, mask),
                      {"samples": args.samples, "temperature": temp}, reference=ref, convention="hggdp")
            err = np.abs(res.image - ref).ravel()
            rs.append(float(np.corrcoef(res.std.ravel(), err)[0, 1]))
            ps.append(res.metrics["psnr"])
        print(f"| {temp:g} | {np.mean(rs):.3f} ({', '.join(f'{r:.2f}' for r in rs)}) | {np.mean(ps):.2f} |", flush=True)


if __name__ == "__main__":
    main()
