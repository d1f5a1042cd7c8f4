"""Checkpoints: tensors in safetensors, everything else in JSON beside them (no pickle).

``step_00001000.safetensors`` holds ``model/<name>`` (the network) and ``optim/<i>/<key>`` (the
optimiser's per-parameter state, e.g. Adam moments and step counts); ``step_00001000.json`` holds
the step, the optimiser's param_groups and scalar state, the run's method, model config, seed,
world size and best validation score. Random draws are seeded from (seed, rank, step)
(:func:`training.dist.step_seed`), so the step *is* the RNG state: a resumed run continues
exactly where the interrupted one would have gone.

A checkpoint bigger than ``SHARD_BYTES`` is split, whole tensors at a time, into
``step_00001000.safetensors`` and ``part_00001000_<k>.safetensors`` (k = 1, 2, …; listed under
``shards`` in the JSON), so that every file of a run can be committed to a repository that refuses
files over 5 MB and a large run still resumes in the next session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

FORMAT = 1
SHARD_BYTES = 4_000_000  # each file of a checkpoint stays under a 5 MB repository limit


class CheckpointError(ValueError):
    """A checkpoint that cannot be resumed; the message says why."""


def save(folder: str | Path, step: int, model: torch.nn.Module, optimizer: torch.optim.Optimizer, meta: dict,
         ema: torch.nn.Module | None = None) -> Path:
    """Write step_<N>.safetensors and step_<N>.json atomically (tmp files, then rename); an EMA copy
    of the model goes in as ``ema/<name>``."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    if ema is not None:
        tensors.update({f"ema/{k}": v for k, v in ema.state_dict().items()})
    opt = optimizer.state_dict()
    scalars = {}
    for pid, state in opt["state"].items():
        for key, value in state.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim/{pid}/{key}"] = value
            else:
                scalars.setdefault(str(pid), {})[key] = value
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    base = folder / f"step_{step:08d}"
    groups = _shards(tensors, SHARD_BYTES)
    names = [_part_name(step, k) for k in range(1, len(groups))]
    doc = {"format": FORMAT, "step": step, "param_groups": opt["param_groups"], "optim_scalars": scalars,
           "shards": names, **meta}
    # the parts go first and the JSON last: a checkpoint counts as complete once its JSON exists
    for name, group in zip(names, groups[1:]):
        save_file(group, str(folder / (name + ".tmp")))
        os.replace(folder / (name + ".tmp"), folder / name)
    tmp_t, tmp_j = base.with_suffix(".safetensors.tmp"), base.with_suffix(".json.tmp")
    save_file(groups[0], str(tmp_t))
    tmp_j.write_text(json.dumps(doc, indent=1, default=_jsonable))
    os.replace(tmp_t, base.with_suffix(".safetensors"))
    os.replace(tmp_j, base.with_suffix(".json"))
    return base.with_suffix(".safetensors")


def _part_name(step: int, k: int) -> str:
    return f"part_{step:08d}_{k}.safetensors"


def _shards(tensors: dict, limit: int) -> list[dict]:
    """Split ``tensors`` in order into groups of at most ``limit`` bytes; a tensor bigger than the
    limit gets a group of its own (it cannot be split without changing its key)."""
    groups: list[dict] = [{}]
    size = 0
    for k, v in tensors.items():
        nbytes = v.numel() * v.element_size()
        if groups[-1] and size + nbytes > limit:
            groups.append({})
            size = 0
        groups[-1][k] = v
        size += nbytes
    return groups


def _jsonable(o):
    if isinstance(o, (tuple, set)):
        return list(o)
    if isinstance(o, torch.Tensor):
        return o.tolist()
    return str(o)


def latest(folder: str | Path) -> Path | None:
    """The newest complete checkpoint in ``folder`` (both files present), or None."""
    done = [p for p in Path(folder).glob("step_*.safetensors") if p.with_suffix(".json").exists()]
    return max(done, key=lambda p: p.stem) if done else None


def prune(folder: str | Path, keep: int) -> None:
    """Delete all but the ``keep`` newest checkpoints."""
    done = sorted(Path(folder).glob("step_*.safetensors"), key=lambda p: p.stem)
    for p in done[:-keep] if keep > 0 else []:
        p.with_suffix(".json").unlink(missing_ok=True)  # first, so a half-deleted one is not 'latest'
        p.unlink(missing_ok=True)
        for part in p.parent.glob(f"part_{p.stem[5:]}_*.safetensors"):
            part.unlink(missing_ok=True)


def is_checkpoint(path: str | Path) -> bool:
    """Whether ``path`` is a checkpoint of this format (its JSON beside it), not a weights file."""
    path = Path(path)
    if not path.name.startswith("step_"):
        return False
    try:
        return "param_groups" in read_meta(path)
    except CheckpointError:
        return False


def read_meta(path: str | Path) -> dict:
    path = Path(path)
    meta_path = path.with_suffix(".json")
    if not path.exists() or not meta_path.exists():
        raise CheckpointError(f"checkpoint {path} needs both {path.name} and {meta_path.name}")
    try:
        doc = json.loads(meta_path.read_text())
    except json.JSONDecodeError as e:
        raise CheckpointError(f"{meta_path} is not valid JSON ({e})") from None
    if doc.get("format") != FORMAT:
        raise CheckpointError(f"{meta_path} has checkpoint format {doc.get('format')}, this code reads {FORMAT}")
    return doc


def load(path: str | Path, model: torch.nn.Module, optimizer: torch.optim.Optimizer | None = None,
         ema: torch.nn.Module | None = None) -> dict:
    """Restore model (optimiser, EMA) state in place; returns the JSON document. A checkpoint
    without EMA tensors starts the EMA from the model's weights."""
    doc = read_meta(path)
    tensors = read_tensors(path, doc)
    state = {k[6:]: v for k, v in tensors.items() if k.startswith("model/")}
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        raise CheckpointError(f"checkpoint {Path(path).name} does not fit this model: {str(e).splitlines()[0]} "
                              "(was the model config changed?)") from None
    if optimizer is not None:
        optimizer.load_state_dict(_optim_state(tensors, doc))
    if ema is not None:
        ema_state = {k[4:]: v for k, v in tensors.items() if k.startswith("ema/")}
        ema.load_state_dict(ema_state or state)
    return doc


def read_tensors(path: str | Path, doc: dict | None = None) -> dict:
    """Every tensor of the checkpoint at ``path``, its parts included (on the CPU)."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    path = Path(path)
    doc = read_meta(path) if doc is None else doc
    tensors = {}
    for file in [path] + [path.parent / name for name in doc.get("shards", [])]:
        if not file.exists():
            raise CheckpointError(f"checkpoint {path.name} is missing its part {file.name}: copy it beside "
                                  f"{path.name} or resume from an older checkpoint")
        try:
            tensors.update(load_file(str(file), device="cpu"))
        except (SafetensorError, OSError) as e:
            raise CheckpointError(f"checkpoint {file} is corrupt or truncated ({e})") from None
    return tensors


def _optim_state(tensors: dict, doc: dict) -> dict:
    state: dict[int, dict] = {}
    for k, v in tensors.items():
        if k.startswith("optim/"):
            _, pid, key = k.split("/", 2)
            state.setdefault(int(pid), {})[key] = v
    for pid, values in doc.get("optim_scalars", {}).items():
        state.setdefault(int(pid), {}).update(values)
    return {"state": state, "param_groups": doc["param_groups"]}
