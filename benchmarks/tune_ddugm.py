"""DD-UGM's fast schedule on the training-side validation series (heart patient 32, slice z4,
20 frames, 192²: never trained on, never a test series). Final-iteration PSNR (ddugm convention)
against the network evaluations per frame, beside L+S of the same run.

    python benchmarks/tune_ddugm.py --weights-k K.safetensors --weights-x X.safetensors \\
        --grid "iterations=10,20,30;sigma_start=0.1,0.2" [-o benchmarks/tuning/ddugm.csv]
"""

import argparse
import csv
import itertools
import os
import time
from pathlib import Path

from napari_unrollrecon.engine import bench

ap = argparse.ArgumentParser()
ap.add_argument("--data", default=os.environ.get("UNROLLRECON_DATA", str(Path(__file__).parents[1] / "../shared/datasets")))
ap.add_argument("--weights-k", required=True)
ap.add_argument("--weights-x", required=True)
ap.add_argument("--grid", default="iterations=10,20;sigma_start=0.1,0.2",
                help="NAME=v1,v2;NAME=... (DD-UGM parameters, every combination)")
ap.add_argument("--masks", default="R10+ACS20,radial15")
ap.add_argument("--frames", type=int, default=20)
ap.add_argument("--baseline", action="store_true", help="also run L+S and zero-filled")
ap.add_argument("-o", "--output", default="benchmarks/tuning/ddugm.csv")
args = ap.parse_args()
d = Path(args.data)
MASKS = {"R10+ACS20": f"file:{d}/DD-UGM/mask/mask_Rn/mask_R10.mat|file:{d}/DD-UGM/mask/mask_acs/mask_acs20.mat",
         "radial15": f"file:{d}/DD-UGM/mask/mask_Radial/radial15.mat"}
grid = [(k, v.split(",")) for k, v in (item.split("=") for item in args.grid.split(";") if item)]
common = dict(dynamic=True, group=r"p32t\d+z(4)", fit=(192, 192), convention="ddugm", mask_file_frames="tile",
              quiet=True, frames=args.frames)
rows = []


def add(row):
    rows.append(row)
    print(row, flush=True)


for mask in args.masks.split(","):
    if args.baseline:
        for r in bench.run_bench(d / "CGPD-CSNet/data/heart_test", ["zero-filled", "lplus-s"], masks=[MASKS[mask]],
                                 ratios=[0], **common):
            add({"mask": mask, "method": r["method"], "psnr": round(r["psnr_mean"], 3), "ssim": round(r["ssim_mean"], 4),
                 "seconds": round(r["seconds_per_slice"], 1)})
    for values in itertools.product(*[v for _, v in grid]):
        p = {"weights_k": args.weights_k, "weights_x": args.weights_x, **dict(zip([k for k, _ in grid], values))}
        t0 = time.perf_counter()
        r = bench.run_bench(d / "CGPD-CSNet/data/heart_test", ["dd-ugm"], masks=[MASKS[mask]], ratios=[0],
                            params={"dd-ugm": p}, **common)[0]
        add({"mask": mask, "method": "dd-ugm", **dict(zip([k for k, _ in grid], values)),
             "psnr": round(r["psnr_mean"], 3), "ssim": round(r["ssim_mean"], 4),
             "seconds": round(time.perf_counter() - t0, 1)})
Path(args.output).parent.mkdir(parents=True, exist_ok=True)
keys = list(dict.fromkeys(k for r in rows for k in r))
with open(args.output, "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=keys)
    w.writeheader()
    w.writerows(rows)
