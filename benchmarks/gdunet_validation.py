"""GDUNet MRI per-ratio validation: final-stage PSNR of one or more weights files, and of the mean
of their images (an ensemble), on the validation slices only - the ``data.val`` sources of
training/configs/gdunet-mri.toml, read by the training data loader (SIAT500 block 481-500: 20
complex slices, peak-normalised), generated Cartesian masks with seeds 0 and 1, ``gdunet`` convention.
Used for the issue-15 decisions in docs/methods/gdunet.md; never on test31 or brain-50.

    .venv/bin/python benchmarks/gdunet_validation.py 0.05,0.1 A.safetensors B.safetensors [...]
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

import numpy as np
import torch

from napari_unrollrecon.engine import problems, registry, stream
from napari_unrollrecon.engine.metrics import evaluate
from napari_unrollrecon.engine.pipeline import MaskSettings

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repository's training package
from training import config, data  # noqa: E402


def validation_slices() -> list[np.ndarray]:
    """All validation images of the config (not cut to its val_limit), with its root ($UNROLLRECON_DATA)."""
    cfg = config.load("gdunet-mri", "cpu-w32-tight2")["data"]
    root = data.data_root(cfg["root"])
    return [x for src in cfg["val"] for x in data.load_source(src, root, "complex", cfg).images]


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
