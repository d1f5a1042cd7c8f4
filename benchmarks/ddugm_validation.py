"""DD-UGM settings on validation-side series only (docs/methods/dd-ugm.md): heart patient 32,
slice z4 (never trained on, never a test series), final-iteration per-frame-mean PSNR (ddugm
convention) beside zero-filled, TV and L+S (30 and 50 iterations) of the same run.

Cases: ``cart`` / ``radial`` — the 20 frames at 192² with the authors' R10 + ACS20 and radial 15 %
masks (tiled over the frames); ``tcart`` / ``tequi`` / ``tradial`` — a small complex series like
the other test set's family: the first 10 frames resized to 110² (field of view kept), a smooth
synthetic phase (constant + quadratic, fixed seed), generated Cartesian 25 %, equispaced R10 and
radial 15 % k-t masks.

    .venv/bin/python benchmarks/ddugm_validation.py tcart,tradial '[{}, {"networks": false}]' \\
        [--weights-x X.safetensors --weights-k K.safetensors] [-o out.csv]

Each JSON object is one DD-UGM run's parameters (empty: the defaults, bundled weights). ``--noise``
adds complex Gaussian noise to the k-space samples (real acquisitions have it; PSNR is always
against the clean series).
"""

import argparse
import contextlib
import csv
import json
import os
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from napari_unrollrecon.engine import bench, problems, registry, stream
from napari_unrollrecon.engine.metrics import evaluate
from napari_unrollrecon.methods import dd_ugm_models as M
from napari_unrollrecon.methods.learned import load_model

D = Path(os.environ.get("UNROLLRECON_DATA", str(Path(__file__).parents[1] / "../shared/datasets")))
MASK_FILES = {"cart": f"file:{D}/DD-UGM/mask/mask_Rn/mask_R10.mat|file:{D}/DD-UGM/mask/mask_acs/mask_acs20.mat",
              "radial": f"file:{D}/DD-UGM/mask/mask_Radial/radial15.mat"}
GENERATED = {"tcart": ("cartesian", 25), "tequi": ("equispaced", 10), "tradial": ("radial", 15)}


def validation_series() -> np.ndarray:
    s = bench._images(f"{D}/CGPD-CSNet/data/heart_test", None, dynamic=True, group=r"p32t\d+z(4)", fit=(192, 192))[0]
    return s.astype(np.float32) / s.max()


def small_complex(x: np.ndarray, frames=10, size=110, seed=7) -> np.ndarray:
    """The first frames resized to size² with a smooth synthetic phase (the training data's kind)."""
    t = torch.from_numpy(np.clip(x[:frames], 0, None))[:, None]
    m = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[:, 0].numpy()
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    offset = rng.uniform(-np.pi, np.pi)
    c = rng.normal(0, np.pi / 4, 3)
    phase = offset + c[0] * xx**2 + c[1] * yy**2 + c[2] * xx * yy
    return (np.clip(m, 0, None) / m.max() * np.exp(1j * phase)).astype(np.complex64)


def case(name: str, x: np.ndarray):
    if name in MASK_FILES:
        return x, bench.tile_frames(bench._mask_for(MASK_FILES[name], 0, 0).make((16, *x.shape[1:]))[0], len(x))
    s = small_complex(x)
    kind, pct = GENERATED[name]
    return s, bench._mask_for(kind, pct, 0).make(s.shape)[0]


def psnr(image, ref) -> float:
    return round(evaluate(np.abs(image), np.abs(ref), "ddugm")["psnr"], 2)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("cases", help=f"comma-separated: {', '.join([*MASK_FILES, *GENERATED])}")
    ap.add_argument("runs", nargs="?", default="[{}]", help="JSON list of DD-UGM parameter sets")
    ap.add_argument("--weights-x", default="")
    ap.add_argument("--weights-k", default="")
    ap.add_argument("--noise", type=float, default=0.0,
                    help="complex Gaussian k-space noise, relative to the RMS of the measured samples")
    ap.add_argument("-o", "--output", default="")
    args = ap.parse_args()
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    x, rows = validation_series(), []
    with contextlib.ExitStack() as stack:
        for kind, path in (("dd-ugm-k", args.weights_k), ("dd-ugm-x", args.weights_x)):
            if path:  # other weights than the bundled ones
                stack.enter_context(M.STORES[kind].override(load_model(path, kind, M.build_model)[0]))
        for name in args.cases.split(","):
            x0, mask = case(name, x)
            p = problems.mri_from_image(x0, mask, noise=args.noise)
            runs = [("zero-filled", {}), ("tv", {}), ("lplus-s", {"iterations": 30}), ("lplus-s", {})]
            for method, params in runs + [("dd-ugm", r) for r in json.loads(args.runs)]:
                t = time.perf_counter()
                r = stream.run(registry.get(method), p, dict(params))
                row = {"case": name, "noise": args.noise, "method": method, "params": json.dumps(params),
                       "psnr": psnr(r.complex_image, x0), "seconds": round(time.perf_counter() - t, 1)}
                rows.append(row)
                print(row, flush=True)
    if args.output:
        with open(args.output, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(rows[0]))
            w.writeheader()
            w.writerows(rows)


if __name__ == "__main__":
    main()
