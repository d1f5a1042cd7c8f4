"""The training loop shared by every learned method (one process or torchrun DDP).

Per step and rank: draw ``batch`` patches (numpy Generator), let the method simulate measurements
(``make_batch`` with a torch Generator), ``loss`` -> backward (DDP averages the gradients over
ranks) -> optional clipping -> optimiser step with the scheduled learning rate. All three random
streams and the global torch RNG are seeded from (seed, rank, step), so any step can be replayed
and a resumed run matches an uninterrupted one exactly.

Outputs in ``train.out`` (default runs/<method>-<profile>): ``log.csv`` (step, loss, lr,
throughput, validation PSNR, the method's scalars), ``checkpoints/step_N.{safetensors,json}``,
and the exported weights ``<name>.safetensors`` (last step) and ``<name>-best.safetensors``
(best validation PSNR), each with its model card.
"""

from __future__ import annotations

import csv
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch

from napari_unrollrecon.engine.metrics import psnr
from napari_unrollrecon.methods.learned import save_weights, unwrap
from training import checkpoint as ckpt
from training import config as C
from training import data as D
from training import dist as Dd
from training.methods import resolve

REPO = Path(__file__).resolve().parents[1]


def train(cfg: dict, resume: str | None = None, quiet: bool = False, command: str | None = None) -> dict:
    """Run the config; returns a summary (weights path, steps, wall time, last/best val PSNR)."""
    t_cfg = cfg["train"]
    ctx = Dd.setup(t_cfg["device"], t_cfg["threads"])
    try:
        return _Run(cfg, ctx, command).go(resume, quiet)
    finally:
        Dd.teardown(ctx)


class _Run:
    def __init__(self, cfg, ctx: Dd.Context, command):
        self.cfg, self.ctx, self.t = cfg, ctx, cfg["train"]
        self.command = command or "python -m training " + " ".join(sys.argv[1:])
        self.method = resolve(cfg["method"])
        self.model_cfg = mask_files_under(C.model_config(cfg, self.method.training.configs),
                                          D.data_root(cfg["data"]["root"]))
        self.train_set, self.val_set, self.data_desc = D.build(cfg["data"], self.method.modalities)
        d = cfg["data"]
        self.sampler = D.PatchSampler(self.train_set, d["patch"], d["flips"], d["rot90"])
        self.val_images = D.validation_images(self.val_set, d["val_patch"])
        self.out = Path(self.t["out"].format(name=cfg["name"], method=cfg["method"], profile=cfg["profile"]))
        self.ckpt_dir = self.out / "checkpoints"
        torch.manual_seed(self.t["seed"])  # identical initial weights on every rank
        self.model = self.method.training.build_model(self.model_cfg).to(ctx.device)
        if self.t["channels_last"]:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.opt = _optimizer(self.model, self.t)
        self.ema = _ema_copy(self.model) if self.t["ema"] > 0 else None
        self.step, self.best, self.best_step, self.elapsed = 0, -math.inf, 0, 0.0
        self.last_val = None

    # ------------------------------------------------------------------ driver
    def go(self, resume, quiet):
        self._resume(resume)
        net = self._wrap()
        log = _CsvLog(self.out / "log.csv", self.ctx.main, append=self.step > 0)
        bar = self._bar(quiet)
        acc, acc_logs, n_acc, t_mark = 0.0, {}, 0, time.perf_counter()
        t_start = time.perf_counter() - self.elapsed
        while self.step < self.t["steps"]:
            loss, logs = self._train_step(net)
            self.step += 1
            acc, n_acc = acc + loss, n_acc + 1
            for k, v in logs.items():
                acc_logs[k] = acc_logs.get(k, 0.0) + float(v)
            last = self.step == self.t["steps"]
            if self.step % self.t["log_every"] == 0 or last:
                keys = sorted(acc_logs)
                sums = Dd.all_sum([acc, n_acc] + [acc_logs[k] for k in keys], self.ctx)
                dt = time.perf_counter() - t_mark
                row = {"step": self.step, "loss": sums[0] / sums[1], "lr": self.opt.param_groups[0]["lr"],
                       "imgs_per_s": self.t["batch"] * sums[1] / max(dt, 1e-9),
                       "wall_s": time.perf_counter() - t_start}
                row.update({k: sums[2 + i] / sums[1] for i, k in enumerate(keys)})
                if self.step % self.t["val_every"] == 0 or last:
                    row["val_psnr"] = self._validate()
                log.write(row)
                bar.update(self.step - bar.n)
                bar.set_postfix(loss=f"{row['loss']:.4g}", img_s=f"{row['imgs_per_s']:.1f}",
                                val=f"{self.last_val:.2f}" if self.last_val is not None else "-")
                acc, acc_logs, n_acc, t_mark = 0.0, {}, 0, time.perf_counter()
            elif self.step % self.t["val_every"] == 0:
                log.write({"step": self.step, "val_psnr": self._validate(),
                           "wall_s": time.perf_counter() - t_start})
            self.elapsed = time.perf_counter() - t_start
            if self.step % self.t["ckpt_every"] == 0 or last:
                self._checkpoint()
        bar.close()
        return self._finish()

    def _train_step(self, net):
        seed = Dd.step_seed(self.t["seed"], self.ctx.rank, self.step)
        torch.manual_seed(seed)
        np_rng, gen = np.random.default_rng(seed), torch.Generator().manual_seed(seed)
        targets = torch.from_numpy(self.sampler.batch(self.t["batch"], np_rng)).to(self.ctx.device)
        batch = self.method.training.make_batch(targets, gen, self.model_cfg)
        net.train()
        loss, logs = self.method.training.loss(net, batch)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {self.step + 1}; lower train.lr or set "
                                     "train.grad_clip, then resume from the last checkpoint")
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        if self.t["grad_clip"] > 0:
            torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.t["grad_clip"])
        for g in self.opt.param_groups:
            g["lr"] = lr_at(self.step, self.t)
        self.opt.step()
        hook = self.method.training.after_step
        if hook is not None:
            hook(unwrap(self.model), self.model_cfg)
        if self.ema is not None:  # warm-up: the average forgets the random initial weights quickly
            _ema_update(self.ema, self.model, min(self.t["ema"], (1 + self.step) / (10 + self.step)))
            if hook is not None:
                hook(self.ema, self.model_cfg)
        return float(loss.detach()), logs or {}

    def _exported(self) -> torch.nn.Module:
        """The weights that are validated and exported: the EMA copy when there is one."""
        return self.ema if self.ema is not None else unwrap(self.model)

    # ------------------------------------------------------------------ pieces
    def _wrap(self):
        net = self.model
        if self.ctx.distributed:
            ids = [self.ctx.device.index] if self.ctx.device.type == "cuda" else None
            net = _DDP(net, device_ids=ids, find_unused_parameters=self.t["find_unused_parameters"])
        if self.t["compile"]:
            net = torch.compile(net)
        return net

    def _bar(self, quiet):
        from tqdm import tqdm

        return tqdm(total=self.t["steps"], initial=self.step, unit="step", dynamic_ncols=True,
                    disable=quiet or not self.ctx.main, desc=self.cfg["name"])

    @torch.no_grad()
    def _validate(self) -> float:
        """Mean PSNR (magnitudes, data range of the reference) over the validation set, all ranks.

        Each image is simulated on its own with a generator seeded by its index, so the score does
        not depend on the number of processes or the batch size.
        """
        model = self._exported()
        model.eval()
        total, count = 0.0, 0
        for i in range(self.ctx.rank, len(self.val_images), self.ctx.world):
            gen = torch.Generator().manual_seed(self.t["seed"] + 10_000_019 + i)
            target = torch.from_numpy(self.val_images[i][None]).to(self.ctx.device)
            batch = self.method.training.make_batch(target, gen, self.model_cfg)
            pred = self.method.training.predict(model, batch)
            total += psnr(np.abs(pred.detach().cpu().numpy()[0]), np.abs(batch["target"].cpu().numpy()[0]))
            count += 1
        total, count = Dd.all_sum([total, count], self.ctx)
        self.last_val = total / max(count, 1)
        if self.last_val > self.best:
            self.best, self.best_step = self.last_val, self.step
            if self.ctx.main:
                save_weights(self._exported(), self.out / f"{self.cfg['name']}-best.safetensors",
                             self._card(best=True))
        return self.last_val

    def _meta(self) -> dict:
        return {"method": self.method.name, "model_config": self.model_cfg, "seed": self.t["seed"],
                "world_size": self.ctx.world, "best_val_psnr": self.best, "best_step": self.best_step,
                "last_val_psnr": self.last_val, "wall_time_s": self.elapsed, "config": _public(self.cfg)}

    def _checkpoint(self):
        if self.ctx.main:
            ckpt.save(self.ckpt_dir, self.step, unwrap(self.model), self.opt, self._meta(), ema=self.ema)
            ckpt.prune(self.ckpt_dir, self.t["keep_ckpts"])
        Dd.barrier(self.ctx)

    def _init_weights(self) -> None:
        """``train.init``: warm start from a weights file or a checkpoint (model tensors only; a
        fresh optimiser and step count). The architecture must match the config's, except for
        modules ``train.init_new`` names (added since; they keep their own initialisation)."""
        from napari_unrollrecon.methods.learned import load_state

        init = Path(self.t["init"])
        # a (possibly split) checkpoint has its JSON beside it; a weights file has a card or nothing
        state = ckpt.read_tensors(init) if ckpt.is_checkpoint(init) else load_state(init)
        if any(k.startswith("model/") for k in state):
            state = {k[6:]: v for k, v in state.items() if k.startswith("model/")}
        try:
            missing, unexpected = unwrap(self.model).load_state_dict(state, strict=False)
        except RuntimeError as e:  # a tensor of another shape
            raise ckpt.CheckpointError(f"train.init = {self.t['init']} does not fit this config's model: "
                                       f"{str(e).splitlines()[0]}") from None
        missing = [k for k in missing if not k.startswith(tuple(self.t["init_new"]))]
        if missing or unexpected:  # only what train.init_new names may be absent; nothing extra
            raise ckpt.CheckpointError(f"train.init = {self.t['init']} does not fit this config's model: "
                                       f"missing {missing[:3]}, unexpected {unexpected[:3]}")
        if self.ema is not None:
            self.ema.load_state_dict(unwrap(self.model).state_dict())
        if self.ctx.main:
            print(f"initialised from {self.t['init']}", file=sys.stderr)

    def _resume(self, resume):
        if self.t["init"] and self.step == 0:
            self._init_weights()  # a checkpoint found below replaces these weights
        if not resume:
            return
        path = ckpt.latest(self.ckpt_dir) if resume == "auto" else Path(resume)
        if path is None:
            if self.ctx.main:
                print(f"no checkpoint in {self.ckpt_dir}; starting from step 0", file=sys.stderr)
            return
        doc = ckpt.load(path, unwrap(self.model), self.opt, ema=self.ema)
        if doc.get("method") != self.method.name or doc.get("model_config") != _public(self.model_cfg):
            raise ckpt.CheckpointError(f"checkpoint {path} was made for {doc.get('method')} with model config "
                                       f"{doc.get('model_config')}, not {self.method.name} with {self.model_cfg}")
        if doc.get("world_size") != self.ctx.world and self.ctx.main:
            print(f"note: resuming a {doc.get('world_size')}-process run with {self.ctx.world} processes; "
                  "the data stream differs from an uninterrupted run", file=sys.stderr)
        self.step, self.elapsed = int(doc["step"]), float(doc.get("wall_time_s", 0.0))
        self.best, self.best_step = float(doc.get("best_val_psnr", -math.inf)), int(doc.get("best_step", 0))
        self.last_val = doc.get("last_val_psnr")
        if self.ctx.main:
            print(f"resumed from {path} at step {self.step}", file=sys.stderr)

    def _finish(self) -> dict:
        digests = Dd.gather_digests(self.model, self.ctx)
        if len(set(digests)) != 1:
            raise RuntimeError(f"the DDP ranks ended with different weights ({digests}); "
                               "gradient synchronisation failed - do not use these weights")
        path = self.out / f"{self.cfg['name']}.safetensors"
        if self.ctx.main:
            save_weights(self._exported(), path, self._card(best=False, digests=digests))
        Dd.barrier(self.ctx)
        return {"weights": str(path), "steps": self.step, "wall_time_s": self.elapsed,
                "val_psnr": self.last_val, "best_val_psnr": self.best, "best_step": self.best_step,
                "rank_digests": digests, "out": str(self.out)}

    def _card(self, best: bool, digests=None) -> dict:
        card = {
            "method": self.method.name, "config": _public(self.model_cfg),
            "profile": self.cfg["profile"], "data": self.data_desc,
            "steps": self.step, "wall_time_s": round(self.elapsed, 1),
            "metrics": {"val_psnr": self.last_val, "best_val_psnr": self.best, "best_step": self.best_step,
                        "metric": "mean PSNR (dB) of magnitudes over the validation set, data range of each "
                                  "reference, masks drawn as in training with a fixed seed"},
            "selection": ("best validation PSNR" if best else "last step")
                         + (f", EMA weights (decay {self.t['ema']})" if self.ema is not None else ""),
            "training": self.t, "config_file": _repo_relative(self.cfg.get("config_file")),
            "command": self.command, "world_size": self.ctx.world,
            "launcher": f"torchrun, {self.ctx.world} processes ({self.ctx.backend})" if self.ctx.distributed
            else "single process", "device": str(self.ctx.device),
            "torch": torch.__version__, "python": platform.python_version(),
            "git_commit": _git_commit(), "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        }
        if digests:
            card["rank_digests"] = digests
        return card


# --------------------------------------------------------------------------- helpers
class _DDP(torch.nn.parallel.DistributedDataParallel):
    """DDP whose unknown attributes fall through to the network (``model.middle`` in a loss works
    as in a single process; calls must still go through ``model(...)`` to be synchronised)."""

    def __getattr__(self, name):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def _ema_copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    ema = copy.deepcopy(unwrap(model)).eval()
    for p in ema.parameters():
        p.requires_grad_(False)
    return ema


@torch.no_grad()
def _ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    """ema ← decay·ema + (1 − decay)·model for floating tensors; other buffers are copied."""
    src = unwrap(model).state_dict()
    for k, v in ema.state_dict().items():
        if v.is_floating_point():
            v.lerp_(src[k].to(v.dtype), 1 - decay)
        else:
            v.copy_(src[k])


def lr_at(step: int, t: dict) -> float:
    """Learning rate for 0-based ``step``: linear warm-up, then constant, cosine or step decay."""
    lr = t["lr"]
    if t["warmup"] and step < t["warmup"]:
        return lr * (step + 1) / t["warmup"]
    if t["schedule"] == "cosine":
        span = max(1, t["steps"] - t["warmup"])
        frac = min(1.0, (step - t["warmup"]) / span)
        floor = lr * t["min_lr_factor"]
        return floor + (lr - floor) * 0.5 * (1 + math.cos(math.pi * frac))
    if t["schedule"] == "step":
        return lr * t["gamma"] ** sum(step >= m for m in t["milestones"])
    return lr


def mask_files_under(model_cfg: dict, root: Path) -> dict:
    """Make relative ``file:`` mask families (config ``masks`` / ``ratios`` keys) absolute under ``root``."""
    def fix(name):
        if isinstance(name, str) and name.startswith("file:") and not Path(name[5:]).is_absolute():
            return "file:" + str(root / name[5:])
        return name

    out = dict(model_cfg)
    if isinstance(out.get("masks"), list):
        out["masks"] = [fix(m) for m in out["masks"]]
    if isinstance(out.get("ratios"), dict):
        out["ratios"] = {fix(k): v for k, v in out["ratios"].items()}
    return out


def _optimizer(model, t):
    params = [p for p in model.parameters() if p.requires_grad]
    if t["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=t["lr"], momentum=t["momentum"], weight_decay=t["weight_decay"])
    cls = torch.optim.AdamW if t["optimizer"] == "adamw" else torch.optim.Adam
    return cls(params, lr=t["lr"], betas=tuple(t["betas"]), weight_decay=t["weight_decay"])


def _public(obj):
    """A JSON-safe copy (tuples -> lists) so configs compare equal after a checkpoint round trip."""
    import json

    return json.loads(json.dumps(obj, default=str))


def _repo_relative(path) -> str | None:
    if not path:
        return None
    p = Path(path).resolve()
    return str(p.relative_to(REPO)) if p.is_relative_to(REPO) else str(p)


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5)
        dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


class _CsvLog:
    """log.csv on rank 0: the header is fixed by the first row; later unknown keys are dropped."""

    def __init__(self, path: Path, active: bool, append: bool):
        self.path, self.active, self.fields = path, active, None
        if active:
            path.parent.mkdir(parents=True, exist_ok=True)
            if append and path.exists():
                with open(path, newline="") as f:
                    self.fields = next(csv.reader(f), None)
            else:
                path.unlink(missing_ok=True)

    def write(self, row: dict) -> None:
        if not self.active:
            return
        if self.fields is None:
            self.fields = ["step", "loss", "lr", "imgs_per_s", "wall_s", "val_psnr"] + sorted(
                k for k in row if k not in ("step", "loss", "lr", "imgs_per_s", "wall_s", "val_psnr"))
            with open(self.path, "w", newline="") as f:
                csv.writer(f).writerow(self.fields)
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, self.fields, extrasaction="ignore").writerow(
                {k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in row.items()})
