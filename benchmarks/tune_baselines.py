"""Choose the default relative weights of the TV and L1-wavelet baselines (MRI).

Tuned on TRAINING-SIDE data only - the IXI brain validation PNGs (RefineGAN-IXI-brain/db_valid),
never on the 50 brain test images - with the CGPD-CSNet Cartesian masks at 10-50 %. One weight
per method, maximising the mean PSNR (0-255 scale) over ratios and images.

    python benchmarks/tune_baselines.py [--data-root DIR] [--images 10]
"""

from __future__ import annotations

import argparse
import glob
import os
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import scipy.io as sio
import torch

from napari_unrollrecon.engine import problems, registry, stream
from napari_unrollrecon.physics.fft import mask_to_centred

GRID = {"tv": [0.003, 0.01, 0.02, 0.03, 0.05], "l1-wavelet": [0.001, 0.002, 0.004, 0.008]}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=os.environ.get("UNROLLRECON_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))
    ap.add_argument("--images", type=int, default=10)
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.data_root)
    files = sorted(glob.glob(str(root / "RefineGAN-IXI-brain/data/brain/db_valid/*.png")))[: args.images]
    imgs = [iio.imread(f).astype(np.float32) for f in files]
    masks = {
        r: mask_to_centred(sio.loadmat(root / f"CGPD-CSNet/sampling_matrix/Cartesian/mask_{r}.mat")["mask_matrix"].astype(np.float32))
        for r in (10, 20, 30, 40, 50)
    }
    print(f"| method | λ (relative) | " + " | ".join(f"{r}%" for r in masks) + " | mean |")
    print("|---|---|" + "---|" * (len(masks) + 1))
    for name, grid in GRID.items():
        for lam in grid:
            row = []
            for r, m in masks.items():
                ps = [stream.run(registry.get(name), problems.mri_from_image(x, m), {"lam": lam}, reference=x, convention="cgpd").metrics["psnr"] for x in imgs]
                row.append(np.mean(ps))
            print(f"| {name} | {lam} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {np.mean(row):.2f} |", flush=True)


if __name__ == "__main__":
    main()
