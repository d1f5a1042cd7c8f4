"""External check: the zero-filled row of the CGPD-CSNet paper (Table I, brain, Cartesian)."""

import numpy as np
import pytest

from napari_unrollrecon.engine import bench

PAPER = {10: (23.85, 0.5743), 20: (26.40, 0.6611), 30: (28.64, 0.7249), 40: (31.12, 0.7863), 50: (32.93, 0.8230)}


@pytest.mark.data
def test_zero_filled_row_of_cgpd_paper(data_root):
    images = data_root / "ISTA-Net-PyTorch/data/BrainImages_test"
    masks = data_root / "CGPD-CSNet/sampling_matrix/Cartesian"
    if not images.is_dir() or not masks.is_dir():
        pytest.skip("brain test set or Cartesian masks missing")
    rows = bench.run_bench(images, ["zero-filled"], masks=[f"file:{masks}/mask_{{pct}}.mat"],
                           ratios=list(PAPER), convention="cgpd", quiet=True, device="cpu")
    assert len(rows) == 5 and all(r["n"] == 50 for r in rows)
    for row, (pct, (p, s)) in zip(rows, PAPER.items()):
        assert row["setting"] == f"{pct}%"
        assert abs(row["psnr_mean"] - p) <= 0.02, (pct, row["psnr_mean"], p)
        assert abs(row["ssim_mean"] - s) <= 0.001, (pct, row["ssim_mean"], s)
        assert abs(row["realised_ratio"] - pct / 100) < 0.01
