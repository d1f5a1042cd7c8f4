"""Compare at a fixed stage (engine.compare_at): which recorded stage each method shows."""

from __future__ import annotations

import numpy as np
import pytest

from napari_unrollrecon.engine.compare_at import Trajectory, pick, shared_limits


def _trajectory(stages, seconds_per_stage=0.5, total=None):
    t = Trajectory()
    for s in stages:
        t.add(s, total or stages[-1], s * seconds_per_stage, np.full((4, 4), s, np.float32), {"psnr": 10.0 + s})
    return t


def test_pick_stage_time_and_final():
    stages, elapsed = [1, 2, 4, 8], [0.1, 0.2, 0.4, 0.8]
    assert pick(stages, elapsed, "final") == 3
    assert pick(stages, elapsed, "stage", 4) == 2
    assert pick(stages, elapsed, "stage", 5) == 2  # stage 5 was not shown: the newest before it
    assert pick(stages, elapsed, "stage", 100) == 3  # fewer stages than k: the final one
    assert pick(stages, elapsed, "stage", 0) == 0  # before the first: the first
    assert pick(stages, elapsed, "time", 0.3) == 1
    assert pick(stages, elapsed, "time", 0.05) == 0
    with pytest.raises(ValueError, match="mode"):
        pick(stages, elapsed, "middle")


def test_trajectory_at_a_stage_gives_its_image_metrics_and_time():
    t = _trajectory([1, 2, 3, 4, 5])
    snap = t.at("stage", 3)
    assert snap.stage == 3 and snap.metrics["psnr"] == 13.0 and snap.elapsed == 1.5
    assert float(snap.image[0, 0]) == 3.0
    assert t.at("time", 1.0).stage == 2 and t.at("final").stage == 5 and t.total == 5
    assert Trajectory().at("final") is None


def test_trajectory_copies_images_and_replaces_a_repeated_stage():
    t = Trajectory()
    buf = np.zeros((2, 2), np.float32)
    t.add(1, 2, 0.1, buf)
    buf[:] = 7  # the run reuses its buffer: the record must not change
    t.add(2, 2, 0.2, buf)
    t.add(2, 2, 0.3, buf * 2)  # the final stage shown again
    assert len(t) == 2 and float(t.snaps[0].image.max()) == 0.0 and float(t.at("final").image[0, 0]) == 14.0


def test_trajectory_is_bounded_and_keeps_the_first_and_the_newest_stages():
    t = Trajectory(max_frames=20, recent=10)
    for s in range(1, 201):
        t.add(s, 200, s * 0.01, np.zeros((2, 2)))
    stages = [s.stage for s in t.snaps]
    assert len(stages) <= 20 and stages[0] == 1 and stages[-10:] == list(range(191, 201))
    assert stages == sorted(stages)


def test_shared_limits_is_the_union():
    assert shared_limits([(0, 1), (0.2, 3.0), (-1, 0.5)]) == (-1.0, 3.0)
    assert shared_limits([]) is None
    assert shared_limits([(2, 2)]) == (2.0, 3.0)
