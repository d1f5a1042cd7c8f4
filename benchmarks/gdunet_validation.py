"""GDUNet MRI per-ratio validation: final-stage PSNR of one or more weights files, and of the mean
of their images (an ensemble), on the validation slices only (SIAT500 block 481-500: 20 complex
slices, generated Cartesian masks with seeds 0 and 1, peak-normalised, ``gdunet`` convention).
Used for the issue-15 decisions in docs/methods/gdunet.md; never on test31 or brain-50.

    .venv/bin/python benchmarks/gdunet_validation.py 0.05,0.1 A.safetensors B.safetensors [...]
"""

from __future__ import annotations

import itertools
import os
import sys
from pathlib import Path

import h5py
import numpy as np
import torch

from napari_unrollrecon.engine import problems, registry, stream
from napari_unrollrecon.engine.metrics import evaluate
from napari_unrollrecon.engine.pipeline import MaskSettings

ROOT = Path(os.environ.get("UNROLLRECON_DATA", Path(__file__).parents[1] / "../shared/datasets"))


def validation_slices() -> list[np.ndarray]:
    with h5py.File(ROOT / "SIAT500" / "siat500.h5") as f:
        index = np.asarray(f["source_index"])
        rows = [f["image_ri"][i] for i in np.where((index >= 481) & (index <= 500))[0]]
    images = [r[0] + 1j * r[1] for r in rows]
    return [x / np.abs(x).max() for x in images]


def main(ratios: list[float], weights: list[str]) -> None:
    torch.set_num_threads(1)
    spec, slices = registry.get("gdunet"), validation_slices()
    names = [Path(w).stem for w in weights]
    for ratio in ratios:
        images, refs = {n: [] for n in names}, []
        for seed in (0, 1):
            mask, desc = MaskSettings("cartesian", ratio, seed).make(slices[0].shape)
            for x in slices:
                problem = problems.mri_from_image(x, mask, "cpu", meta=desc)
                refs.append(x)
                for n, w in zip(names, weights):
                    images[n].append(np.asarray(stream.run(spec, problem, {"weights": w}).image))

        def psnr(imgs) -> float:
            return float(np.mean([evaluate(a, r, "gdunet", with_ssim=False)["psnr"] for a, r in zip(imgs, refs)]))

        for n in names:
            print(f"{ratio:g}  {n}  {psnr(images[n]):.3f}", flush=True)
        for size in range(2, len(names) + 1):
            for group in itertools.combinations(names, size):
                mean = [sum(z) / size for z in zip(*(images[n] for n in group))]
                print(f"{ratio:g}  mean of {' + '.join(group)}  {psnr(mean):.3f}", flush=True)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main([float(r) for r in sys.argv[1].split(",")], sys.argv[2:])
