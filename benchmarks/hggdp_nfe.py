"""HGGDP quality against the number of network evaluations (final-iteration PSNR, hggdp convention).

    .venv/bin/python benchmarks/hggdp_nfe.py [--weights W] [--split val|test31] [--limit N] [--mask radial_015]

``--split val`` (default) uses SIAT500 block 481-500 (validation: choose schedules here);
``test31`` reports on the test slices (never tune on them). Each schedule is run with V = 1,
K = 1 and seed 0; the output lists evaluations, seconds per slice, mean PSNR and the oracle (best
over iterations, labelled) for every schedule, plus zero-filled for reference.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from napari_unrollrecon.engine import io, problems, registry
from napari_unrollrecon.engine.metrics import evaluate
from napari_unrollrecon.engine.stream import collect, stream

DATA = Path(os.environ.get("UNROLLRECON_DATA", Path(__file__).resolve().parents[2] / "shared" / "datasets"))
SCHEDULES = [  # (name, params): ladders of different lengths and warm starts
    ("fast σ0.3 L24", {"levels": 24, "sigma_start": 0.3}),
    ("fast σ0.1 L24", {"levels": 24, "sigma_start": 0.1}),
    ("fast σ0.1 L48", {"levels": 48, "sigma_start": 0.1}),
    ("fast σ0.3 L60", {"levels": 60, "sigma_start": 0.3}),
    ("fast σ0.05 L60", {"levels": 60, "sigma_start": 0.05}),
]


def slices(split: str, limit: int):
    if split == "test31":
        items = io.read_many(DATA / "HGGDP/hggdp_rec/test_image31", kind="image")
        return [it.data for it in items][:limit]
    import h5py

    with h5py.File(DATA / "SIAT500/siat500.h5") as f:
        idx = np.nonzero((f["source_index"][:] >= 481) & (f["source_index"][:] <= 500))[0][:limit]
        return [f["image_ri"][i][0].astype(np.float32) + 1j * f["image_ri"][i][1].astype(np.float32) for i in idx]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", default="")
    ap.add_argument("--split", choices=("val", "test31"), default="val")
    ap.add_argument("--limit", type=int, default=3)
    ap.add_argument("--mask", default="radial_015")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--schedules", default="", help="JSON list of [name, params] replacing the built-in list")
    ap.add_argument("--baselines", default="tv,l1-wavelet", help="classical methods run on the same slices")
    ap.add_argument("--samples", type=int, default=1, help="K posterior samples (the mean is scored)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    mask, _ = io.read_mask(DATA / f"HGGDP/hggdp_rec/mask/mask_{args.mask}.mat")
    imgs = slices(args.split, args.limit)
    out = {"split": args.split, "mask": args.mask, "n": len(imgs), "load": os.getloadavg(), "rows": []}
    zf = [evaluate(problems.mri_from_image(x, mask).operator.AH(problems.mri_from_image(x, mask).y).abs().numpy(),
                   np.abs(x), "hggdp")["psnr"] for x in imgs]
    out["zero_filled_psnr"] = float(np.mean(zf))
    for name in filter(None, args.baselines.split(",")):
        res = [collect(stream(registry.get(name), problems.mri_from_image(x, mask), {}, reference=np.abs(x),
                              convention="hggdp"))[1].metrics["psnr"] for x in imgs]
        out[f"{name}_psnr"] = round(float(np.mean(res)), 2)
        print(json.dumps({name: out[f"{name}_psnr"]}), flush=True)
    spec = registry.get("hggdp")
    for name, p in (json.loads(args.schedules) if args.schedules else SCHEDULES):
        p = {"samples": args.samples, **p}
        finals, oracles, secs, evals = [], [], [], 0
        for x in imgs:
            prob = problems.mri_from_image(x, mask)
            t0 = time.perf_counter()
            items, res = collect(stream(spec, prob, {"weights": args.weights, **p}, reference=np.abs(x),
                                        convention="hggdp"))
            secs.append(time.perf_counter() - t0)
            finals.append(res.metrics["psnr"])
            oracles.append(max(u.metrics["psnr"] for u in items))
            evals = res.meta["network_evaluations"]
        out["rows"].append({"schedule": name, "evaluations": evals, "s_per_slice": round(float(np.mean(secs)), 1),
                            "psnr_final": round(float(np.mean(finals)), 2),
                            "psnr_best_over_iterations_ORACLE": round(float(np.mean(oracles)), 2)})
        print(json.dumps(out["rows"][-1]), flush=True)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
