"""HGGDP on the paper's 3 test images (test31 #23, #24, #27) at the masks of its tables: our
final-iteration PSNR, and the best over iterations labelled as an ORACLE (chosen against the
reference, as the paper's figures are), beside the paper's published best-over-iterations values.

    .venv/bin/python benchmarks/hggdp_paper3.py [--weights W] [--threads 1] [-o benchmarks/results/hggdp_paper3.md]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch

from napari_unrollrecon.engine import io, problems, registry
from napari_unrollrecon.engine.stream import collect, stream

DATA = Path(os.environ.get("UNROLLRECON_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
#: mask file → (label, the paper's published PSNR on the 3 images, best over iterations)
PAPER = {"radial_030": ("pseudo-radial R ≈ 3.3", 36.18), "radial_025": ("pseudo-radial R = 4", 35.55),
         "radial_020": ("pseudo-radial R = 5", 34.40), "radial_010": ("pseudo-radial R = 10", 30.88),
         "radial_015": ("pseudo-radial R ≈ 6.7", 32.79), "random_015": ("2D random R ≈ 6.7", 31.78),
         "cart_085": ("1D Cartesian R ≈ 6.7", 29.05)}
IMAGES = ("test_data_23.mat", "test_data_24.mat", "test_data_27.mat")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("-o", "--output", default="benchmarks/results/hggdp_paper3.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    folder = DATA / "HGGDP/hggdp_rec/test_image31"
    imgs = [io.read(folder / name, kind="image").data for name in IMAGES]
    rows = ["| mask | paper (best over iterations) | ours, final iteration | ours, best over iterations (ORACLE) | s/slice |",
            "|---|---|---|---|---|"]
    for stem, (label, paper) in PAPER.items():
        mask, _ = io.read_mask(DATA / f"HGGDP/hggdp_rec/mask/mask_{stem}.mat")
        finals, oracles, secs = [], [], []
        for x in imgs:
            t0 = time.perf_counter()
            items, res = collect(stream(registry.get("hggdp"), problems.mri_from_image(x, mask),
                                        {"weights": args.weights}, reference=np.abs(x), convention="hggdp"))
            secs.append(time.perf_counter() - t0)
            finals.append(res.metrics["psnr"])
            oracles.append(max(u.metrics["psnr"] for u in items))
        rows.append(f"| {label} (`mask_{stem}`) | {paper:.2f} | {np.mean(finals):.2f} | {np.mean(oracles):.2f} | "
                    f"{np.mean(secs):.1f} |")
        print(rows[-1], flush=True)
    text = (f"# HGGDP on the paper's 3 images (test31 #23, #24, #27)\n\nFast default, bundled weights unless "
            f"--weights; {args.threads} thread(s); load at the end {os.getloadavg()[0]:.1f}.\n\n" + "\n".join(rows) + "\n")
    Path(args.output).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
