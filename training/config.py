"""Training configs: TOML files with a base, named profiles (``paper``, ``cpu``...) and overrides.

A file (``training/configs/<method>.toml`` or any path) holds::

    method = "cgpd-csnet"          # registry name (or an importable module defining TRAINING)
    default_profile = "cpu"
    [model]                        # passed to build_model / make_batch: the method's preset
    preset = "paper"               #   TRAINING.configs[preset], updated with the other keys here
    masks = ["cartesian"]          #   (mask families / ratios are read by make_batch)
    [data]   ...                   # see training/data.py and DATA_DEFAULTS
    [[data.train]] ...             # one table per source
    [train]  ...                   # see TRAIN_DEFAULTS
    [profile.cpu.train]            # a profile deep-merges over the base
    steps = 2000

Command-line ``--set train.steps=100`` overrides win over the profile. Unknown keys in ``[train]``
and ``[data]`` are errors (a typo must not silently fall back to a default); ``[model]`` is free
for the method.
"""

from __future__ import annotations

import copy
import tomllib
from pathlib import Path

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

TRAIN_DEFAULTS = {
    "steps": 1000,            # optimiser steps (each rank processes `batch` samples per step)
    "batch": 4,               # per process
    "lr": 1e-4,
    "optimizer": "adam",      # adam | adamw | sgd
    "betas": [0.9, 0.999],
    "momentum": 0.9,          # sgd only
    "weight_decay": 0.0,
    "schedule": "constant",   # constant | cosine | step
    "milestones": [],         # step schedule: multiply lr by gamma at these steps
    "gamma": 0.1,
    "warmup": 0,              # linear warm-up steps
    "min_lr_factor": 0.0,     # cosine floor as a fraction of lr
    "grad_clip": 0.0,         # max gradient norm, 0 = off
    "ema": 0.0,               # exponential moving average of the weights (decay, e.g. 0.999; 0 = off):
                              #   validated, exported and resumed in place of the raw weights
    "init": "",               # start from these weights (a .safetensors model or checkpoint), not at random
    "init_new": [],           # prefixes of modules the init file lacks (added to the architecture since,
                              #   e.g. "threshold_net.condition"): they keep their own initialisation
    "val_every": 200,
    "ckpt_every": 500,
    "keep_ckpts": 3,          # newest checkpoints kept
    "log_every": 10,
    "seed": 0,
    "threads": 0,             # torch threads per process, 0 = cores / processes on this node
    "device": "auto",         # auto | cpu | cuda (a torchrun rank uses cuda:LOCAL_RANK)
    "channels_last": False,   # NHWC memory format for the model's conv layers
    "compile": False,         # torch.compile the model
    "find_unused_parameters": False,  # DDP: set when some parameters get no gradient in a step
    "out": "runs/{name}",     # output folder (relative to the current directory)
    "name": "{method}-{profile}",
}

DATA_DEFAULTS = {
    "root": "",               # data root; "" = $UNROLLRECON_DATA or <repo>/../shared/datasets
    "target": "auto",         # complex | magnitude | real; auto = real for CT-only methods, else complex
    "normalise": "max",       # max (max|x| -> 1) | minmax | none, per image
    "patch": 0,               # random square patches of this size; 0 = whole images
    "flips": True,            # random horizontal / vertical flips
    "rot90": False,           # random multiples of 90 degrees (square patches only)
    "val_patch": 0,           # centre crop for validation; 0 = whole images
    "val_limit": 0,           # validation images used; 0 = all
    "val_split": 0.0,         # without [[data.val]]: hold out this tail fraction of each train source
    "exclude_test31_neighbours": True,  # SIAT500: keep only blocks without an HGGDP test slice
    "train": [],
    "val": [],
}

SOURCE_KEYS = {
    "kind": "files | h5 | siat500 | synthetic",
    "path": "file or folder, relative to the data root or absolute",
    "pattern": "files: glob inside the folder (default: every readable data file)",
    "key": "files: variable name inside .mat/.npz/.h5 files",
    "dataset": "h5: dataset name",
    "layout": "h5: 'ri' (axis 1 = real/imag), 'complex' or 'real'",
    "select": "1-based inclusive ranges [[a, b], ...] of rows / files (or of index_dataset values)",
    "index_dataset": "h5: dataset of per-row numbers that `select` refers to (siat500: source_index)",
    "offset": "added to the values first (e.g. -1024 for CT numbers -> HU)",
    "clip": "[lo, hi] clip after the offset (e.g. an HU window)",
    "downsample": "n: replace each n×n block by its mean first (e.g. 2 for 512² CT slices to 256²)",
    "fit": "[H, W]: centre-crop or zero-pad every image to this shape (after downsample)",
    "normalise": "per-source override of data.normalise",
    "limit": "use only the first N images of this source",
    "n": "synthetic: number of images",
    "size": "synthetic: image size",
    "seed": "synthetic: generator seed",
}
KINDS = ("files", "h5", "siat500", "synthetic")


class ConfigError(ValueError):
    """A config that cannot be used; the message names the file, the key and what to do."""


def find_config(name_or_path: str | Path) -> Path:
    """A path to a .toml file, or a name in training/configs (``cgpd-csnet`` -> cgpd-csnet.toml)."""
    p = Path(name_or_path)
    if p.suffix == ".toml":
        if not p.exists():
            raise ConfigError(f"config file {p} does not exist")
        return p
    candidate = CONFIG_DIR / f"{name_or_path}.toml"
    if candidate.exists():
        return candidate
    known = sorted(c.stem for c in CONFIG_DIR.glob("*.toml"))
    raise ConfigError(f"no config named {name_or_path!r}; known: {', '.join(known)} (or pass a .toml path)")


def load(name_or_path, profile: str | None = None, overrides=()) -> dict:
    """Read, apply the profile and ``KEY=VALUE`` overrides, fill defaults and validate."""
    path = find_config(name_or_path)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{path}: not valid TOML ({e})") from None
    profiles = raw.pop("profile", {})
    profile = profile or raw.pop("default_profile", None) or "cpu"
    raw.pop("default_profile", None)
    if profile != "base" and profile not in profiles:
        raise ConfigError(f"{path.name} has no profile {profile!r}; profiles: {', '.join(sorted(profiles))} "
                          "(or 'base' for the file without a profile)")
    cfg = deep_merge(raw, profiles.get(profile, {}))
    for item in overrides:
        keys, value = parse_override(item)
        _set(cfg, keys, value)
    cfg["profile"] = profile
    cfg["config_file"] = str(path)
    return validate(cfg, path.name)


def deep_merge(base: dict, over: dict) -> dict:
    """``base`` updated by ``over``, recursively for tables (lists are replaced)."""
    out = copy.deepcopy(base)
    for k, v in over.items():
        out[k] = deep_merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
    return out


def parse_override(item: str) -> tuple[list[str], object]:
    """``train.steps=100`` -> (["train", "steps"], 100); the value is parsed as TOML, else kept as text."""
    key, sep, text = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"--set {item!r} must look like SECTION.KEY=VALUE, e.g. train.steps=100")
    try:
        value = tomllib.loads(f"v = {text.strip()}")["v"]
    except tomllib.TOMLDecodeError:
        value = text.strip()
    return key.strip().split("."), value


def _set(cfg: dict, keys: list[str], value) -> None:
    node = cfg
    for k in keys[:-1]:
        node = node.setdefault(k, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {'.'.join(keys)}: {k!r} is not a table")
    node[keys[-1]] = value


def validate(cfg: dict, where: str = "config") -> dict:
    """Fill defaults of [train] and [data]; refuse unknown keys and bad values with clear errors."""
    if not cfg.get("method"):
        raise ConfigError(f"{where}: set `method = \"NAME\"` (a learned method, see `python -m training methods`)")
    cfg["model"] = dict(cfg.get("model", {}))
    cfg["train"] = _with_defaults(cfg.get("train", {}), TRAIN_DEFAULTS, f"{where} [train]")
    cfg["data"] = _with_defaults(cfg.get("data", {}), DATA_DEFAULTS, f"{where} [data]")
    t, d = cfg["train"], cfg["data"]
    for k in ("steps", "batch", "val_every", "ckpt_every", "log_every"):
        if not isinstance(t[k], int) or t[k] < 1:
            raise ConfigError(f"{where}: train.{k} must be a positive integer, got {t[k]!r}")
    if not isinstance(t["init_new"], list) or not all(isinstance(p, str) and p for p in t["init_new"]):
        raise ConfigError(f"{where}: train.init_new must be a list of module-name prefixes, got {t['init_new']!r}")
    if t["lr"] <= 0:
        raise ConfigError(f"{where}: train.lr must be positive, got {t['lr']!r}")
    _choice(where, "train.optimizer", t["optimizer"], ("adam", "adamw", "sgd"))
    _choice(where, "train.schedule", t["schedule"], ("constant", "cosine", "step"))
    _choice(where, "data.target", d["target"], ("auto", "complex", "magnitude", "real"))
    _choice(where, "data.normalise", d["normalise"], ("max", "minmax", "none"))
    if not d["train"]:
        raise ConfigError(f"{where}: no training data; add at least one [[data.train]] table")
    for split in ("train", "val"):
        for i, src in enumerate(d[split]):
            _check_source(src, f"{where} data.{split}[{i}]")
    if not d["val"] and not 0 < d["val_split"] < 1:
        raise ConfigError(f"{where}: no validation data; add [[data.val]] tables or set data.val_split "
                          "(e.g. 0.1) to hold out part of the training sources")
    names = {"method": cfg["method"], "profile": cfg.get("profile", "base")}
    cfg["name"] = t["name"].format(**names)
    t["init"] = t["init"].format(**names)  # e.g. a warm restart from "runs/{method}-cpu/…"
    return cfg


def _with_defaults(section: dict, defaults: dict, where: str) -> dict:
    unknown = sorted(set(section) - set(defaults))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {', '.join(defaults)}")
    return {**copy.deepcopy(defaults), **section}


def _choice(where, key, value, allowed):
    if value not in allowed:
        raise ConfigError(f"{where}: {key} must be one of {list(allowed)}, got {value!r}")


def _check_source(src: dict, where: str) -> None:
    unknown = sorted(set(src) - set(SOURCE_KEYS))
    if unknown:
        raise ConfigError(f"{where}: unknown keys {unknown}; known: {', '.join(SOURCE_KEYS)}")
    kind = src.get("kind", "files")
    if kind not in KINDS:
        raise ConfigError(f"{where}: kind must be one of {list(KINDS)}, got {kind!r}")
    if kind in ("files", "h5") and not src.get("path"):
        raise ConfigError(f"{where}: a {kind} source needs `path`")
    if kind == "h5" and not src.get("dataset"):
        raise ConfigError(f"{where}: an h5 source needs `dataset` (the name of the image array)")
    for rng in src.get("select", []):
        if not (isinstance(rng, list) and len(rng) == 2 and rng[0] <= rng[1]):
            raise ConfigError(f"{where}: select must be a list of [first, last] pairs, got {src['select']!r}")


def model_config(cfg: dict, presets: dict) -> dict:
    """The dict handed to build_model / make_batch: the method's preset updated by [model]."""
    model = dict(cfg["model"])
    preset = model.pop("preset", None)
    if preset is None:
        return model
    if preset not in presets:
        raise ConfigError(f"{cfg['method']} has no model preset {preset!r}; presets: {', '.join(presets)}")
    return deep_merge(presets[preset], model)
