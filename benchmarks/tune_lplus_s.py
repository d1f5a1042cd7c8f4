"""Tune L+S's λ_L, λ_S and iteration count on training-side cine data (heart patient 31, slice z2;
never patient 33). One run of the longest count per (λ_L, λ_S) scores every shorter count on the
way (final-iteration PSNR at each count, per-frame mean, ddugm convention).

    python benchmarks/tune_lplus_s.py [--data ROOT] [-o benchmarks/tuning/lplus_s.csv]
"""

import argparse
import csv
import itertools
import os
from pathlib import Path

import numpy as np
import torch

from napari_unrollrecon.engine import bench, problems, registry
from napari_unrollrecon.engine.metrics import evaluate

ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.environ.get("UNROLLRECON_DATA", str(Path(__file__).parents[1] / "../shared/datasets")))
ap.add_argument("-o", "--output", default="benchmarks/tuning/lplus_s.csv")
ap.add_argument("--counts", default="50,100,200,400", help="iteration counts scored")
args = ap.parse_args()
torch.set_num_threads(1)
d = Path(args.data)
counts = sorted(int(c) for c in args.counts.split(","))
masks = {"R10+ACS20": f"file:{d}/DD-UGM/mask/mask_Rn/mask_R10.mat|file:{d}/DD-UGM/mask/mask_acs/mask_acs20.mat",
         "radial15": f"file:{d}/DD-UGM/mask/mask_Radial/radial15.mat"}
series = bench._images(d / "CGPD-CSNet/data/heart_test", None, dynamic=True, group=r"p31t\d+z(2)", fit=(192, 192))[0]
x0 = series.astype(np.float32) / series.max()
rows = []
for (name, spec), lam_l, lam_s in itertools.product(masks.items(), (0.005, 0.01, 0.02), (0.003, 0.01, 0.03)):
    mask = bench.tile_frames(bench._mask_for(spec, 0, 0).make((16, 192, 192))[0], x0.shape[0])
    gen = registry.get("lplus-s").start(problems.mri_from_image(x0, mask),
                                        {"lam_l": lam_l, "lam_s": lam_s, "iterations": counts[-1]})
    for u in gen:
        if u.stage in counts:
            rows.append({"mask": name, "lam_l": lam_l, "lam_s": lam_s, "iterations": u.stage,
                         "psnr": round(evaluate(u.image, x0, "ddugm")["psnr"], 3)})
            print(rows[-1], flush=True)
Path(args.output).parent.mkdir(parents=True, exist_ok=True)
with open(args.output, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
