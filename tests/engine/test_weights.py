"""Weights registry and loading: bundled list / default / names, user files, every failure mode
named, .pt only through weights_only, and `bench --weights` with the peak-memory column."""

import argparse
import json

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from torch import nn

from napari_unrollrecon.engine import bench, registry, weights
from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.base import MethodSpec, UpdateMaker
from napari_unrollrecon.methods.learned import WEIGHTS_PARAM, TrainingSpec, WeightsError

NAME = "weights-test-net"


class Net(nn.Module):
    def __init__(self, channels=8, depth=2):
        super().__init__()
        self.convs = nn.ModuleList(nn.Conv2d(2 if i == 0 else channels, channels if i < depth - 1 else 2, 3, padding=1)
                                   for i in range(depth))

    def forward(self, x):
        r = torch.view_as_real(x).permute(0, 3, 1, 2)
        h = r
        for conv in self.convs:
            h = conv(h)
        return torch.view_as_complex((r + 0.0 * h).permute(0, 2, 3, 1).contiguous())  # identity + graph


def build_model(config):
    return Net(config.get("channels", 8), config.get("depth", 2))


TRAINING = TrainingSpec(build_model=build_model, make_batch=None, loss=None, predict=None,
                        configs={"cpu": {"channels": 8, "depth": 2}})


def run(problem, params, cache=None, start=0):
    model, _ = weights.load(NAME, params.get("weights"), device=problem.device)
    make = UpdateMaker(problem, params, total=1)
    with torch.no_grad():
        x = model(problem.operator.AH(problem.y)[None])[0]
    yield make(1, x)
    return make.result(NAME, x, stages=1)


SPEC = MethodSpec(name=NAME, title="weights test", modalities=("mri",), params=(WEIGHTS_PARAM,), run=run,
                  learned=True)


def hog_run(problem, params, cache=None, start=0):
    big = torch.ones(50_000_000)  # 200 MB, touched
    make = UpdateMaker(problem, params, total=1)
    x = problem.operator.AH(problem.y) * float(big[-1])
    del big
    yield make(1, x)
    return make.result("memory-hog", x, stages=1)


HOG = MethodSpec(name="memory-hog", title="hog", modalities=("mri",), params=(), run=hog_run)


@pytest.fixture(autouse=True)
def bundle(tmp_path, monkeypatch):
    # registered for this test only (monkeypatch removes them), so no other test sees them
    monkeypatch.setitem(registry._REGISTRY, SPEC.name, SPEC)
    monkeypatch.setitem(registry._REGISTRY, HOG.name, HOG)
    folder = tmp_path / "bundled"
    folder.mkdir()
    monkeypatch.setattr(learned, "BUNDLED_DIR", folder)
    weights.clear_cache()
    yield folder
    weights.clear_cache()


def _save(path, config=None, method=NAME, **card):
    torch.manual_seed(0)
    config = config or {"channels": 8, "depth": 2}
    return learned.save_weights(build_model(config), path, {"method": method, "config": config, **card})


def test_bundled_listing_default_and_names(bundle):
    with pytest.raises(WeightsError, match="no bundled weights for 'weights-test-net'.*python -m training train"):
        weights.resolve(NAME)
    _save(bundle / "a-small.safetensors")
    _save(bundle / "b-main.safetensors", default=True)
    _save(bundle / "other.safetensors", method="someone-else")
    assert [e.name for e in weights.available(NAME)] == ["b-main", "a-small"]
    assert weights.default(NAME).name == "b-main.safetensors"
    assert weights.resolve(NAME, "").name == "b-main.safetensors"
    assert weights.resolve(NAME, "a-small").name == "a-small.safetensors"
    with pytest.raises(WeightsError, match="no bundled weights named 'nope'.*'b-main', 'a-small'"):
        weights.resolve(NAME, "nope")
    assert "b-main" in weights.describe(NAME)[0]


def test_user_file_loads_in_eval_mode_and_is_cached(tmp_path):
    path = _save(tmp_path / "mine.safetensors")
    model, card = weights.load(NAME, str(path))
    assert not model.training and card["sha256"] == learned.sha256(path)
    again, _ = weights.load(NAME, str(path))
    assert again is model
    torch.manual_seed(0)
    ref = build_model({"channels": 8, "depth": 2})
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values()))


def test_corrupt_file_is_named(tmp_path):
    path = _save(tmp_path / "w.safetensors")
    data = bytearray(path.read_bytes())
    data[:8] = b"\xff" * 8  # header length garbage
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="w.safetensors is corrupt or truncated"):
        weights.load(NAME, str(path))


def test_truncated_file_is_named(tmp_path):
    path = _save(tmp_path / "w.safetensors")
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        weights.load(NAME, str(path))


def test_changed_bytes_fail_the_card_checksum(tmp_path):
    path = _save(tmp_path / "w.safetensors")
    data = bytearray(path.read_bytes())
    data[-3] ^= 0x40  # inside the last tensor: still parses
    path.write_bytes(bytes(data))
    with pytest.raises(WeightsError, match="does not match the sha256 in its card"):
        weights.load(NAME, str(path))


@pytest.mark.parametrize("card_config, words", [
    ({"channels": 4, "depth": 2}, r"shape mismatch \['convs.0.weight: \(8, 2, 3, 3\) vs \(4, 2, 3, 3\)'"),
    ({"channels": 8, "depth": 3}, r"2 missing \['convs.2.weight', 'convs.2.bias'\]"),
    ({"channels": 8, "depth": 1}, r"2 unexpected \['convs.1.bias', 'convs.1.weight'\]"),
])
def test_wrong_architecture_names_the_mismatch(tmp_path, card_config, words):
    path = _save(tmp_path / "w.safetensors")
    card = json.loads(learned.card_path(path).read_text())
    card["config"] = card_config
    learned.card_path(path).write_text(json.dumps(card))
    with pytest.raises(WeightsError, match=f"does not fit the {NAME} architecture.*{words}"):
        weights.load(NAME, str(path))


def test_missing_card_wrong_method_and_missing_file(tmp_path):
    path = _save(tmp_path / "w.safetensors")
    with pytest.raises(WeightsError, match="holds weights for 'weights-test-net', not 'tv'"):
        learned.load_model(path, "tv", build_model)
    learned.card_path(path).unlink()
    with pytest.raises(WeightsError, match="no model card w.json beside w.safetensors"):
        weights.load(NAME, str(path))
    with pytest.raises(WeightsError, match="does not exist"):
        weights.load(NAME, str(tmp_path / "gone.safetensors"))
    with pytest.raises(WeightsError, match="not a trainable learned method"):
        weights.training_spec("tv")


def test_pt_files_load_only_as_plain_tensors(tmp_path):
    torch.manual_seed(0)
    good = tmp_path / "good.pt"
    torch.save(build_model({}).state_dict(), good)
    learned.card_path(good).write_text(json.dumps({"method": NAME, "config": {}}))
    model, _ = weights.load(NAME, str(good))
    assert isinstance(model, Net)
    evil = tmp_path / "evil.pt"
    torch.save({"state_dict": argparse.Namespace(x=1)}, evil)
    learned.card_path(evil).write_text(json.dumps({"method": NAME, "config": {}}))
    with pytest.raises(WeightsError, match="could not be read as a tensors-only checkpoint"):
        weights.load(NAME, str(evil))
    (tmp_path / "x.pkl").write_bytes(b"x")
    with pytest.raises(WeightsError, match="must be a .safetensors file"):
        learned.load_model(tmp_path / "x.pkl", NAME, build_model)


def test_bench_runs_a_learned_method_with_weights_and_reports_peak_memory(tmp_path):
    data = tmp_path / "imgs"
    data.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        iio.imwrite(data / f"{i}.png", (rng.random((32, 32)) * 255).astype(np.uint8))
    path = _save(tmp_path / "w.safetensors")
    rows = bench.run_bench(data, [NAME, "zero-filled", "memory-hog"], masks=("cartesian",), ratios=(30,),
                           weights=str(path), device="cpu", quiet=True)
    by = {r["method"]: r for r in rows}
    # the test network is the identity, so it must score exactly like zero filling
    assert by[NAME]["psnr_mean"] == pytest.approx(by["zero-filled"]["psnr_mean"], abs=1e-4)
    assert by["memory-hog"]["peak_mem_mb"] >= 150
    assert by["zero-filled"]["peak_mem_mb"] < 100
    md, csv_path = bench.write_tables(rows, tmp_path / "out")
    assert "peak MB" in md.read_text() and "peak_mem_mb" in csv_path.read_text().splitlines()[0]
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not weights")
    learned.card_path(bad).write_text(json.dumps({"method": NAME, "config": {}}))
    with pytest.raises(WeightsError, match="corrupt or truncated"):
        bench.run_bench(data, [NAME], ratios=(30,), weights=str(bad), device="cpu", quiet=True)


def test_bundled_weights_fit_the_wheel_budget(monkeypatch):
    monkeypatch.undo()  # the real package folder
    assert weights.bundle_size_mb() < weights.BUNDLE_LIMIT_MB
