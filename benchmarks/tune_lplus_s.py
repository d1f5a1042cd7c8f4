"""Tune L+S's λ_L, λ_S on training-side cine data (heart patient 31, slice z2; never patient 33).

    python benchmarks/tune_lplus_s.py [--data ROOT] [-o benchmarks/tuning/lplus_s.csv]
"""

import argparse
import csv
import itertools
import os
from pathlib import Path

from napari_unrollrecon.engine import bench

ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.environ.get("UNROLLRECON_DATA", str(Path(__file__).parents[1] / "../shared/datasets")))
ap.add_argument("-o", "--output", default="benchmarks/tuning/lplus_s.csv")
args = ap.parse_args()
d = Path(args.data)
masks = {"R10+ACS20": f"file:{d}/DD-UGM/mask/mask_Rn/mask_R10.mat|file:{d}/DD-UGM/mask/mask_acs/mask_acs20.mat",
         "radial15": f"file:{d}/DD-UGM/mask/mask_Radial/radial15.mat"}
rows = []
for (name, spec), lam_l, lam_s in itertools.product(masks.items(), (0.005, 0.01, 0.02, 0.05), (0.003, 0.01, 0.03)):
    r = bench.run_bench(d / "CGPD-CSNet/data/heart_test", ["lplus-s"], masks=[spec], ratios=[0], dynamic=True,
                        group=r"p31t\d+z(2)", fit=(192, 192), convention="ddugm", mask_file_frames="tile", quiet=True,
                        params={"lplus-s": {"lam_l": lam_l, "lam_s": lam_s, "iterations": 50}})[0]
    rows.append({"mask": name, "lam_l": lam_l, "lam_s": lam_s, "psnr": round(r["psnr_mean"], 3),
                 "ssim": round(r["ssim_mean"], 4)})
    print(rows[-1], flush=True)
Path(args.output).parent.mkdir(parents=True, exist_ok=True)
with open(args.output, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)
