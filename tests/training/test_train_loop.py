"""The training loop on a tiny CNN (tests/training/dummy_method.py): loss, log, checkpoints, resume,
the exported weights and model card, learning-rate schedules, FLOP counting, and DDP under torchrun."""

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import dummy_method
from napari_unrollrecon.methods import learned
from training import checkpoint as ckpt
from training import config as C
from training.dist import state_digest
from training.trainer import lr_at, train

REPO = Path(__file__).resolve().parents[2]

SMOKE = """
method = "dummy_method"
[model]
preset = "cpu"
masks = ["cartesian", "radial"]
ratios = [0.2, 0.3]
[data]
patch = 32
[[data.train]]
kind = "synthetic"
n = 16
size = 48
[[data.val]]
kind = "synthetic"
n = 4
size = 48
seed = 1
[train]
steps = 20
batch = 4
lr = 3e-3
val_every = 10
ckpt_every = 10
log_every = 5
threads = 1
[profile.cpu]
"""


@pytest.fixture(autouse=True)
def _keep_threads():
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


@pytest.fixture
def smoke(tmp_path):
    path = tmp_path / "smoke.toml"
    path.write_text(SMOKE)

    def load(out="run", *overrides):
        return C.load(path, "cpu", [f"train.out='{tmp_path / out}'", *overrides])
    return load


def _log(out):
    with open(Path(out) / "log.csv") as f:
        return list(csv.DictReader(f))


def test_single_process_run_lowers_the_loss_and_exports_weights_with_a_card(smoke):
    cfg = smoke()
    summary = train(cfg, quiet=True, command="test")
    rows = [r for r in _log(summary["out"]) if r["loss"]]
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert float(rows[-1]["loss"]) < 0.8 * float(rows[0]["loss"])
    assert all(float(r["imgs_per_s"]) > 0 for r in rows)
    assert sum(1 for r in _log(summary["out"]) if r["val_psnr"]) == 2
    weights = Path(summary["weights"])
    card = learned.read_card(weights)
    for key in ("method", "config", "data", "steps", "wall_time_s", "metrics", "sha256", "command", "git_commit"):
        assert key in card
    assert card["method"] == "tiny-cnn" and card["steps"] == 20 and card["sha256"] == learned.sha256(weights)
    assert card["data"]["n_train"] == 16 and card["metrics"]["val_psnr"] == pytest.approx(summary["val_psnr"])
    model, _ = learned.load_model(weights, "tiny-cnn", dummy_method.build_model)
    assert state_digest(model) == summary["rank_digests"][0]
    assert (weights.parent / "dummy_method-cpu-best.safetensors").exists()


def test_resume_continues_exactly_like_an_uninterrupted_run(smoke):
    straight = train(smoke("a"), quiet=True)
    train(smoke("b", "train.steps=10"), quiet=True)
    resumed = train(smoke("b"), resume="auto", quiet=True)
    assert resumed["rank_digests"] == straight["rank_digests"]
    assert resumed["val_psnr"] == pytest.approx(straight["val_psnr"], abs=1e-9)
    assert [r["step"] for r in _log(resumed["out"]) if r["loss"]] == ["5", "10", "15", "20"]
    # a different model config cannot resume that checkpoint
    with pytest.raises(ckpt.CheckpointError, match="does not fit this model|was made for"):
        train(smoke("b", "train.steps=30", "model.channels=4"), resume="auto", quiet=True)


def test_checkpoint_round_trip_restores_model_and_optimiser(tmp_path):
    torch.manual_seed(0)
    model = dummy_method.build_model({"channels": 4})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(2):
        opt.zero_grad()
        model(torch.randn(2, 8, 8, dtype=torch.complex64)).abs().mean().backward()
        opt.step()
    path = ckpt.save(tmp_path, 2, model, opt, {"method": "tiny-cnn"})
    twin = dummy_method.build_model({"channels": 4})
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1.0)
    doc = ckpt.load(path, twin, twin_opt)
    assert doc["step"] == 2 and state_digest(twin) == state_digest(model)
    a, b = opt.state_dict(), twin_opt.state_dict()
    assert b["param_groups"][0]["lr"] == 1e-2
    for pid in a["state"]:
        for k, v in a["state"][pid].items():
            assert torch.equal(torch.as_tensor(v), torch.as_tensor(b["state"][pid][k]))
    assert ckpt.latest(tmp_path) == path
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(ckpt.CheckpointError, match="corrupt or truncated"):
        ckpt.load(path, twin, twin_opt)


def test_a_checkpoint_over_the_file_limit_is_split_into_parts_that_restore_it(tmp_path, monkeypatch):
    torch.manual_seed(0)
    model = dummy_method.build_model({"channels": 8})
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    opt.zero_grad()
    model(torch.randn(2, 8, 8, dtype=torch.complex64)).abs().mean().backward()
    opt.step()
    biggest = max(v.numel() * v.element_size() for v in model.state_dict().values())
    monkeypatch.setattr(ckpt, "SHARD_BYTES", biggest)  # the largest tensor fills a file
    for step in (1, 2):
        path = ckpt.save(tmp_path, step, model, opt, {"method": "tiny-cnn"}, ema=model)
    doc = ckpt.read_meta(path)
    parts = [tmp_path / name for name in doc["shards"]]
    assert len(parts) >= 2 and all(f.exists() for f in parts)
    for f in [path, *parts]:  # every file within the limit or a single tensor
        from safetensors import safe_open
        with safe_open(str(f), "pt") as h:
            keys = list(h.keys())
        assert len(keys) == 1 or f.stat().st_size <= biggest + 4096
    twin = dummy_method.build_model({"channels": 8})
    twin_opt = torch.optim.Adam(twin.parameters(), lr=1.0)
    ckpt.load(path, twin, twin_opt)
    assert state_digest(twin) == state_digest(model)
    assert torch.equal(twin_opt.state_dict()["state"][0]["exp_avg"], opt.state_dict()["state"][0]["exp_avg"])
    assert ckpt.latest(tmp_path) == path  # parts are never taken for checkpoints
    ckpt.prune(tmp_path, keep=1)
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([path.name, path.with_suffix(".json").name]
                                                               + doc["shards"])
    parts[-1].unlink()
    with pytest.raises(ckpt.CheckpointError, match="missing its part"):
        ckpt.load(path, twin, twin_opt)


def test_learning_rate_schedules():
    t = dict(C.TRAIN_DEFAULTS, lr=1.0, steps=100, warmup=10, schedule="cosine", min_lr_factor=0.1)
    assert lr_at(0, t) == pytest.approx(0.1) and lr_at(9, t) == pytest.approx(1.0)
    assert lr_at(10, t) == pytest.approx(1.0) and lr_at(100, t) == pytest.approx(0.1)
    assert lr_at(55, t) == pytest.approx(0.55)
    s = dict(t, warmup=0, schedule="step", milestones=[30, 60], gamma=0.5)
    assert [lr_at(i, s) for i in (0, 29, 30, 60, 99)] == [1.0, 1.0, 0.5, 0.25, 0.25]


def test_cost_counts_the_flops_of_the_network(smoke):
    from training.cost import count
    from training import dist as Dd
    from training.trainer import _Run

    run = _Run(smoke(), Dd.setup("cpu", 1), command="test")
    train_flops, infer_flops = count(run)
    # channels 8, depth 3: convs 2->8, 8->8, 8->2, 3x3, on one 32x32 patch; 2 FLOPs per multiply-add
    assert infer_flops == 2 * 9 * 32 * 32 * (2 * 8 + 8 * 8 + 8 * 2)
    # training: batch 4, forward + weight gradients + input gradients except for the first layer
    assert train_flops == 4 * 2 * 9 * 32 * 32 * (3 * (2 * 8 + 8 * 8 + 8 * 2) - 2 * 8)


def test_ddp_two_cpu_processes_lower_the_loss_and_end_identical(tmp_path):
    """torchrun, 2 processes, gloo: gradients are averaged, so both ranks hold the same weights."""
    torchrun = Path(sys.executable).with_name("torchrun")
    if not torchrun.exists():
        pytest.skip("torchrun not installed beside this Python")
    cfg = tmp_path / "smoke.toml"
    cfg.write_text(SMOKE)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(Path(__file__).parent)]),
               OMP_NUM_THREADS="1")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node", "2", "-m", "training", "train", str(cfg),
           "--set", f"train.out='{tmp_path / 'ddp'}'", "--set", "train.steps=30", "-q"]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    weights = tmp_path / "ddp" / "dummy_method-cpu.safetensors"
    card = json.loads(weights.with_suffix(".json").read_text())
    assert card["world_size"] == 2 and len(card["rank_digests"]) == 2
    assert card["rank_digests"][0] == card["rank_digests"][1]
    model, _ = learned.load_model(weights, "tiny-cnn", dummy_method.build_model)
    assert state_digest(model) == card["rank_digests"][0]
    rows = [r for r in _log(tmp_path / "ddp") if r["loss"]]
    assert float(rows[-1]["loss"]) < 0.8 * float(rows[0]["loss"])


def test_init_warm_starts_from_weights_and_refuses_another_architecture(smoke):
    from training import dist as Dd
    from training.trainer import _Run

    first = train(smoke("a"), quiet=True, command="test")
    weights = Path(first["weights"])
    run = _Run(smoke("b", f"train.init='{weights}'"), Dd.setup("cpu", 1), command="test")
    run._resume(None)
    for name, tensor in learned.load_state(weights).items():
        assert torch.equal(run.model.state_dict()[name], tensor), name
    ckpt_file = sorted((Path(first["out"]) / "checkpoints").glob("*.safetensors"))[-1]
    run = _Run(smoke("c", f"train.init='{ckpt_file}'"), Dd.setup("cpu", 1), command="test")
    run._resume(None)  # a checkpoint (model/ and optim/ tensors) works too
    wider = _Run(smoke("d", f"train.init='{weights}'", "model.channels=12"), Dd.setup("cpu", 1), command="test")
    with pytest.raises(ckpt.CheckpointError, match="does not fit"):
        wider._resume(None)


def test_init_accepts_only_the_modules_init_new_names_as_missing(smoke, tmp_path):
    from safetensors.torch import save_file

    from training import dist as Dd
    from training.trainer import _Run

    state = learned.load_state(train(smoke("a"), quiet=True, command="test")["weights"])
    dropped = sorted(state)[-1]  # a module "added since" the file was written
    older = tmp_path / "older.safetensors"
    save_file({k: v for k, v in state.items() if k != dropped}, str(older))
    strict = _Run(smoke("b", f"train.init='{older}'"), Dd.setup("cpu", 1), command="test")
    with pytest.raises(ckpt.CheckpointError, match="does not fit"):
        strict._resume(None)
    prefix = dropped.rsplit(".", 1)[0]
    run = _Run(smoke("c", f"train.init='{older}'", f"train.init_new=['{prefix}']"), Dd.setup("cpu", 1),
               command="test")
    run._resume(None)
    for name, tensor in state.items():
        if name != dropped:
            assert torch.equal(run.model.state_dict()[name], tensor), name
    with pytest.raises(C.ConfigError, match="init_new"):
        smoke("d", "train.init_new='threshold_net'")
