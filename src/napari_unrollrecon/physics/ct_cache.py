"""Disk cache of the CT projector's sparse matrices, keyed by geometry.

Building the CSR matrices of :class:`~napari_unrollrecon.physics.ct.RadonOperator` takes seconds
(≈ 7 s at 512², 180 views on one idle core, more on a loaded one); reading them back takes a
fraction of a second. A build that took at least :data:`MIN_SECONDS` is saved here, one
safetensors file per geometry (image size, detectors, ray samples, the exact angles, dtype; not
the device - files hold CPU tensors), so the next process with the same geometry loads it.

* Where: ``$UNROLLRECON_CT_CACHE`` if set (``off`` / ``0`` / ``none`` disables the cache), else
  the user cache directory (``platformdirs``, else ``$XDG_CACHE_HOME`` or ``~/.cache``) /
  ``napari-unrollrecon/ct-projector``.
* Size: at most ``$UNROLLRECON_CT_CACHE_MB`` (default :data:`BUDGET_MB`); least recently used
  files go first (a load refreshes a file's time).
* Safety: no pickle - index and value arrays with a JSON header (safetensors); written to a
  temporary file and renamed into place, so readers never see a partial file. A file that does
  not open, names another geometry or format, or fails the structure and checksum checks is
  deleted and the matrices are rebuilt: a bad cache costs time, never a crash.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
import warnings
from pathlib import Path

import numpy as np
import torch

ENV_DIR = "UNROLLRECON_CT_CACHE"
ENV_MB = "UNROLLRECON_CT_CACHE_MB"
BUDGET_MB = 4096
MIN_SECONDS = 0.5  # builds faster than this are not worth a file
FORMAT = "1"  # bump when the matrices' layout or weights change
_OFF = ("off", "0", "none", "no", "false")
_PARTS = ("pair", "alone")
_DIRECTIONS = ("A", "AT")


def cache_dir() -> Path | None:
    """The cache folder, or None when ``$UNROLLRECON_CT_CACHE`` turns the cache off."""
    given = os.environ.get(ENV_DIR)
    if given is not None:
        return None if given.strip().lower() in _OFF else Path(given).expanduser()
    try:
        from platformdirs import user_cache_dir

        base = Path(user_cache_dir("napari-unrollrecon", appauthor=False))
    except ImportError:  # pragma: no cover - platformdirs comes with napari, not with the core
        base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "napari-unrollrecon"
    return base / "ct-projector"


def geometry_key(image_size: int, n_detectors: int, n_samples: int, angles, dtype) -> str:
    """File name of a geometry: readable fields plus a hash of the exact angles."""
    angles = np.ascontiguousarray(np.asarray(angles, dtype=np.float64))
    digest = hashlib.sha256(angles.tobytes() + f"{FORMAT}|{n_samples}".encode()).hexdigest()[:16]
    kind = str(dtype).replace("torch.", "")
    return f"radon-{image_size}px-{len(angles)}v-{n_detectors}d-{kind}-{digest}.safetensors"


def stored(name: str) -> bool:
    """Whether a file for ``name`` is in the cache (it may still turn out to be damaged)."""
    folder = cache_dir()
    return folder is not None and (folder / name).is_file()


def _arrays(mats: dict) -> dict:
    """Flat name -> tensor of the CSR parts (``pair.A.crow``, ``pair.A.col``, ``pair.A.val``, …)."""
    out = {}
    for part, pair in mats.items():
        for direction, m in zip(_DIRECTIONS, pair or ()):
            for what, t in zip(("crow", "col", "val"), (m.crow_indices(), m.col_indices(), m.values())):
                out[f"{part}.{direction}.{what}"] = t.detach().cpu().contiguous()
    return out


def _checksum(t: torch.Tensor) -> int:
    """Sum of the array's bytes read as 64-bit words, modulo 2⁶⁴ (plus its tail bytes): cheap
    (memory speed) and changed by any damaged word."""
    raw = t.numpy().reshape(-1).view(np.uint8)
    n = len(raw) // 8 * 8
    return (int(raw[:n].view(np.uint64).sum(dtype=np.uint64)) + int(raw[n:].sum())) % 2**64


def _checksums(arrays: dict) -> dict:
    return {k: _checksum(t) for k, t in arrays.items()}


def save(name: str, mats: dict) -> Path | None:
    """Write ``{"pair": (A, Aᵀ) | None, "alone": (A, Aᵀ) | None}`` atomically; returns the file
    (None when the cache is off or the write failed - a warning says why)."""
    from safetensors.torch import save_file

    folder = cache_dir()
    if folder is None:
        return None
    arrays = _arrays(mats)
    shapes = {f"{p}.{d}": list(m.shape) for p, pair in mats.items() for d, m in zip(_DIRECTIONS, pair or ())}
    meta = {"format": FORMAT, "name": name, "shapes": json.dumps(shapes),
            "checksums": json.dumps(_checksums(arrays))}
    path = folder / name
    tmp = folder / f".{name}.partial-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        save_file(arrays, str(tmp), metadata=meta)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        warnings.warn(f"could not save the CT projector to {folder}: {exc}", stacklevel=2)
        return None
    _evict(folder, keep=path)
    return path


def load(name: str, device=None) -> dict | None:
    """The matrices saved under ``name`` (on ``device``), or None when absent. A damaged or
    mismatching file is deleted (returns None, so the caller rebuilds)."""
    if not stored(name):
        return None
    path = cache_dir() / name
    try:
        mats = _read(path, name)
    except Exception as exc:  # noqa: BLE001 - any damage means "rebuild", never a crash
        warnings.warn(f"CT projector cache file {path.name} is unusable ({exc}); rebuilding it", stacklevel=2)
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # least recently *used* goes first
    except OSError:
        pass
    if device is not None and torch.device(device).type != "cpu":
        mats = {p: tuple(m.to(device) for m in pair) if pair else None for p, pair in mats.items()}
    return mats


def _read(path: Path, name: str) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT or meta.get("name") != name:
            raise ValueError(f"it holds format {meta.get('format')!r} of {meta.get('name')!r}")
        arrays = {k: f.get_tensor(k) for k in f.keys()}
    shapes, sums = json.loads(meta["shapes"]), json.loads(meta["checksums"])
    if set(sums) != set(arrays):
        raise ValueError("its arrays differ from its header")
    for key, value in _checksums(arrays).items():
        if value != sums[key]:
            raise ValueError(f"checksum of {key} differs")
    mats = {part: None for part in _PARTS}
    for key, shape in shapes.items():
        part, direction = key.split(".")
        m = _csr(arrays, key, tuple(shape))
        mats[part] = (*(mats[part] or ()), m)
    if any(pair is not None and len(pair) != 2 for pair in mats.values()):
        raise ValueError("a matrix lacks its transpose")
    return mats


def _csr(arrays: dict, key: str, shape: tuple) -> torch.Tensor:
    """A CSR tensor from saved parts, after checking that they describe one."""
    crow, col, val = (arrays[f"{key}.{w}"] for w in ("crow", "col", "val"))
    ok = (crow.ndim == col.ndim == val.ndim == 1 and len(crow) == shape[0] + 1 and len(col) == len(val)
          and int(crow[0]) == 0 and int(crow[-1]) == len(col) and bool((crow[1:] >= crow[:-1]).all())
          and (len(col) == 0 or (int(col.min()) >= 0 and int(col.max()) < shape[1])))
    if not ok:
        raise ValueError(f"{key} is not a valid {shape[0]}×{shape[1]} CSR matrix")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, val, size=shape, check_invariants=False)


def _evict(folder: Path, keep: Path) -> None:
    """Delete the least recently used files beyond the size budget, and stale partial files."""
    try:
        budget = float(os.environ.get(ENV_MB, BUDGET_MB)) * 2**20
    except ValueError:
        budget = BUDGET_MB * 2**20
    now = time.time()
    for tmp in folder.glob(".*.partial-*"):
        if now - _stat(tmp, "st_mtime", now) > 3600:  # a crashed writer's leftover
            tmp.unlink(missing_ok=True)
    files = sorted(folder.glob("radon-*.safetensors"), key=lambda p: _stat(p, "st_mtime", 0.0), reverse=True)
    total = 0
    for p in files:  # newest first: keep what fits
        size = _stat(p, "st_size", 0)
        if p != keep and total + size > budget:
            p.unlink(missing_ok=True)
        else:
            total += size


def _stat(path: Path, field: str, default):
    try:
        return getattr(path.stat(), field)
    except OSError:
        return default
