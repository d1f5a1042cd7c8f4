"""Choose the default relative weights of the TV and L1-wavelet baselines.

Tuned on TRAINING-SIDE data only, never on a benchmark test set. One weight per method and
modality, maximising the mean PSNR over settings and images.

* MRI: the IXI brain validation PNGs (RefineGAN-IXI-brain/db_valid), CGPD-CSNet Cartesian masks
  at 10-50 %, PSNR on the 0-255 scale.
* CT (``--modality ct``): TCIA chest slices (TCIA-CT/tcia_ct.h5, HU clipped to [-1000, 2000],
  min-max scaled to [0, 1] like the AAPM test set, 2×2-averaged to 256²), parallel beam with
  60 and 120 views over 180°, PSNR with data range 1.

    python benchmarks/tune_baselines.py [--modality mri|ct] [--data-root DIR] [--images 10]
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
CT_GRID = {"tv": [3e-5, 1e-4, 3e-4, 1e-3], "l1-wavelet": [3e-5, 1e-4, 3e-4, 1e-3]}


def tcia_slices(root: Path, n: int) -> list[np.ndarray]:
    import h5py

    with h5py.File(root / "TCIA-CT/tcia_ct.h5", "r") as f:
        hu = f["hu"][:n].astype(np.float32)
    out = []
    for s in np.clip(hu, -1000, 2000):
        s = (s - s.min()) / (s.max() - s.min())
        out.append(s.reshape(256, 2, 256, 2).mean(axis=(1, 3)))
    return out


def tune_ct(root: Path, n: int):
    imgs = tcia_slices(root, n)
    views = (60, 120)
    print("| method | λ (relative) | " + " | ".join(f"{v} views" for v in views) + " | mean |")
    print("|---|---|" + "---|" * (len(views) + 1))
    for name, grid in CT_GRID.items():
        for lam in grid:
            row = []
            for v in views:
                ps = [stream.run(registry.get(name), problems.ct_from_image(x, v), {"lam": lam}, reference=x, convention="gdunet").metrics["psnr"] for x in imgs]
                row.append(np.mean(ps))
            print(f"| {name} | {lam:g} | " + " | ".join(f"{v:.2f}" for v in row) + f" | {np.mean(row):.2f} |", flush=True)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-root", default=os.environ.get("UNROLLRECON_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "datasets"))
    ap.add_argument("--images", type=int, default=10)
    ap.add_argument("--modality", default="mri", choices=("mri", "ct"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = Path(args.data_root)
    if args.modality == "ct":
        return tune_ct(root, args.images)
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
