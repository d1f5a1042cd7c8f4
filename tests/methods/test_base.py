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
