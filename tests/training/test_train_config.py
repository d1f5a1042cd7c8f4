"""Training configs: profiles, overrides, defaults, validation errors, the shipped config files."""

import pytest

from training import config as C

BASE = """
method = "dummy_method"
default_profile = "cpu"
[model]
preset = "paper"
[data]
patch = 32
[[data.train]]
kind = "synthetic"
[[data.val]]
kind = "synthetic"
seed = 1
[train]
steps = 100
lr = 1e-3
[profile.paper]
[profile.cpu]
model.preset = "cpu"
train.steps = 7
"""


@pytest.fixture
def toml(tmp_path):
    def write(text=BASE, name="c.toml"):
        p = tmp_path / name
        p.write_text(text)
        return p
    return write


def test_profile_merges_over_base_and_defaults_fill_in(toml):
    cfg = C.load(toml())
    assert cfg["profile"] == "cpu"
    assert cfg["train"]["steps"] == 7 and cfg["train"]["lr"] == 1e-3
    assert cfg["train"]["batch"] == C.TRAIN_DEFAULTS["batch"]
    assert cfg["model"]["preset"] == "cpu"
    assert cfg["name"] == "dummy_method-cpu"
    paper = C.load(toml(), "paper")
    assert paper["train"]["steps"] == 100 and paper["model"]["preset"] == "paper"


def test_init_path_names_the_method_and_profile(toml):
    cfg = C.load(toml(), "cpu", ["train.init=runs/{method}-{profile}/w.safetensors"])
    assert cfg["train"]["init"] == "runs/dummy_method-cpu/w.safetensors"


def test_overrides_parse_toml_values(toml):
    cfg = C.load(toml(), "cpu", ["train.steps=12", "data.patch=16", "train.betas=[0.5, 0.9]", "model.note=hi"])
    assert cfg["train"]["steps"] == 12 and cfg["data"]["patch"] == 16
    assert cfg["train"]["betas"] == [0.5, 0.9] and cfg["model"]["note"] == "hi"


@pytest.mark.parametrize("override, words", [
    ("train.stpes=3", "unknown keys ['stpes']"),
    ("train.steps=0", "train.steps must be a positive integer"),
    ("train.optimizer='lbfgs'", "train.optimizer must be one of"),
    ("data.normalise='zscore'", "data.normalise must be one of"),
])
def test_bad_values_name_the_key(toml, override, words):
    with pytest.raises(C.ConfigError, match=words.replace("[", r"\[").replace("]", r"\]")):
        C.load(toml(), "cpu", [override])


def test_missing_profile_and_missing_validation_are_errors(toml):
    with pytest.raises(C.ConfigError, match="no profile 'gpu'"):
        C.load(toml(), "gpu")
    text = BASE.replace('[[data.val]]\nkind = "synthetic"\nseed = 1\n', "")
    with pytest.raises(C.ConfigError, match="no validation data"):
        C.load(toml(text))
    assert C.load(toml(text), overrides=["data.val_split=0.25"])["data"]["val_split"] == 0.25


def test_unknown_source_key_is_an_error(toml):
    with pytest.raises(C.ConfigError, match=r"data.train\[0\]: unknown keys \['paht'\]"):
        C.load(toml(BASE.replace('kind = "synthetic"\n[[data.val]]', 'kind = "synthetic"\npaht = "x"\n[[data.val]]')))


def test_model_config_merges_the_method_preset():
    cfg = {"method": "m", "model": {"preset": "cpu", "channels": 3, "extra": {"b": 2}}}
    presets = {"cpu": {"channels": 8, "depth": 3, "extra": {"a": 1}}}
    assert C.model_config(cfg, presets) == {"channels": 3, "depth": 3, "extra": {"a": 1, "b": 2}}
    with pytest.raises(C.ConfigError, match="no model preset 'gpu'"):
        C.model_config({"method": "m", "model": {"preset": "gpu"}}, presets)


@pytest.mark.parametrize("path", sorted(C.CONFIG_DIR.glob("*.toml")), ids=lambda p: p.stem)
def test_shipped_configs_have_paper_and_cpu_profiles(path):
    for profile in ("paper", "cpu"):
        cfg = C.load(path, profile)
        assert cfg["method"] and cfg["data"]["train"] and cfg["data"]["val"]
    cpu, paper = C.load(path, "cpu"), C.load(path, "paper")
    assert cpu["model"]["preset"] == "cpu" and paper["model"]["preset"] == "paper"
    assert cpu["train"]["steps"] < paper["train"]["steps"]


def test_configs_for_test31_models_exclude_siat_neighbours():
    for name in ("hggdp", "gdunet-mri"):
        cfg = C.load(name, "paper")
        assert cfg["data"]["exclude_test31_neighbours"] is True
