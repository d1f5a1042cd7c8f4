"""``python -m training``: methods, train --dry-run, cost, convert, and the error exits."""

import argparse
import json

import torch

import dummy_method
from napari_unrollrecon.methods import learned
from training.cli import main
from test_train_loop import SMOKE


def _cfg(tmp_path, text=SMOKE):
    p = tmp_path / "smoke.toml"
    p.write_text(text)
    return str(p)


def test_methods_lists_configs(capsys):
    assert main(["methods"]) == 0
    out = capsys.readouterr().out
    assert "cgpd-csnet" in out and "gdunet" in out and "hggdp" in out


def test_dry_run_reports_model_and_data(tmp_path, capsys):
    assert main(["train", _cfg(tmp_path), "--dry-run", "--set", "data.patch=16"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["method"] == "tiny-cnn" and info["n_train"] == 16 and info["n_val"] == 4
    assert info["parameters"] == sum(p.numel() for p in dummy_method.build_model({"channels": 8}).parameters())


def test_bad_config_exits_2_with_the_reason(tmp_path, capsys):
    assert main(["train", _cfg(tmp_path), "--set", "train.stpes=3"]) == 2
    assert "unknown keys ['stpes']" in capsys.readouterr().err
    assert main(["train", "no-such-config"]) == 2
    assert "no config named 'no-such-config'" in capsys.readouterr().err
    assert main(["train", _cfg(tmp_path, SMOKE.replace('"dummy_method"', '"no_such_method"')), "--dry-run"]) == 2
    assert "no method 'no_such_method'" in capsys.readouterr().err


def test_cost_prints_flops_and_a_labelled_estimate(tmp_path, capsys):
    assert main(["cost", _cfg(tmp_path), "--measure", "2", "--tflops", "10"]) == 0
    out = capsys.readouterr().out
    assert "GFLOP per training step" in out and "ESTIMATE" in out and "measured here" in out and "yours" in out


def test_convert_torch_state_dict_to_safetensors(tmp_path, capsys):
    model = dummy_method.build_model({"channels": 8, "depth": 3})
    src = tmp_path / "authors.pth"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, src)
    out = tmp_path / "converted.safetensors"
    assert main(["convert", str(src), "--method", "dummy_method", "--preset", "cpu", "-o", str(out)]) == 0
    loaded, card = learned.load_model(out, "tiny-cnn", dummy_method.build_model)
    assert card["converted_from"] == str(src)
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)
    # wrong preset: shapes do not fit
    assert main(["convert", str(src), "--method", "dummy_method", "--preset", "paper", "-o", str(out)]) == 2
    assert "does not fit" in capsys.readouterr().err


def test_convert_refuses_pickled_objects(tmp_path, capsys):
    src = tmp_path / "evil.pt"
    torch.save({"state_dict": argparse.Namespace(a=1)}, src)  # an arbitrary Python object
    assert main(["convert", str(src), "--method", "dummy_method", "-o", str(tmp_path / "x.safetensors")]) == 2
    assert "tensors-only" in capsys.readouterr().err
