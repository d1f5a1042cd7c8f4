import numpy as np
import pytest

from napari_unrollrecon.methods.base import LiveParams, Param, earliest_stage

SPECS = (
    Param("lam", 0.1, low=0.0, high=1.0, live=True),
    Param("iters", 10, kind="int", low=1, high=100),
    Param("wave", "db4", kind="choice", choices=("haar", "db4")),
    Param("flag", False, kind="bool"),
    Param("eps_stage3", 1.0, low=0, high=10, live=True, stage=3),
)


def test_defaults_and_coercion():
    p = LiveParams(SPECS, {"iters": "20", "flag": "true", "lam": "0.5"})
    assert p == {"lam": 0.5, "iters": 20, "wave": "db4", "flag": True, "eps_stage3": 1.0}


@pytest.mark.parametrize("values,match", [
    ({"lam": 2.0}, r"'lam'=2.0 is outside its range \[0.0, 1.0\]"),
    ({"iters": "many"}, "'iters' must be a int"),
    ({"wave": "db8"}, r"one of \['haar', 'db4'\]"),
    ({"lam": float("nan")}, "must be finite"),
    ({"nope": 1}, "unknown parameter 'nope'"),
])
def test_bad_values_are_named(values, match):
    with pytest.raises(ValueError, match=match):
        LiveParams(SPECS, values)


def test_live_changes():
    p = LiveParams(SPECS)
    assert p.apply({"lam": 0.3, "eps_stage3": 1.0}) == {"lam"}
    assert p["lam"] == 0.3
    assert p.apply(None) == set()
    with pytest.raises(ValueError, match="'iters' cannot change during a run"):
        p.apply({"iters": 5})


def test_earliest_stage():
    assert earliest_stage(SPECS, ["eps_stage3"]) == 3
    assert earliest_stage(SPECS, ["eps_stage3", "lam"]) == 0
    assert earliest_stage(SPECS, []) == 0


# --------------------------------------------------------------------------- the bounded stage cache
def test_stage_cache_stays_within_its_budget_and_answers_nearest():
    import torch

    from napari_unrollrecon.methods.base import StageCache

    state = torch.zeros(16, 64, 64)  # 256 KiB per stage
    cache = StageCache(budget_mb=2)  # room for 8 states
    cache.reset("run")
    for stage in range(0, 1001):
        cache.put(stage, state)
        assert cache.nbytes <= cache.budget + state.numel() * 4
    kept = cache.stages
    assert kept[0] == 0 and kept[-1] == 1000 and len(kept) <= 9
    gaps = np.diff(kept[1:-1])
    assert len(set(gaps.tolist())) <= 1, "evenly thinned"
    s, _ = cache.nearest(777)
    assert s <= 777 and s == max(k for k in kept if k <= 777)
    assert cache.nearest(-1) is None
    cache.put(300, state)  # a resumed run from 300 drops the old trajectory after it
    assert cache.stages[-1] == 300


def test_resume_point_refuses_another_run():
    from napari_unrollrecon.methods.base import StageCache, resume_point

    cache = StageCache()
    assert resume_point(cache, "a", 0, "t") == (0, None) and cache.key == "a"
    cache.put(3, "state")
    assert resume_point(cache, "a", 5, "t") == (3, "state") and cache.resumed_from == 4
    with pytest.raises(ValueError, match="cannot resume"):
        resume_point(cache, "b", 5, "t")
