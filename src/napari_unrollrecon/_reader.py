"""napari reader: k-space, sinograms, images and our saved reconstructions (wraps ``engine.io``).

``get_reader`` only sniffs cheaply and returns ``None`` for files it should not claim - other
plugins read ``*.h5`` too, so an HDF5 file is claimed only when it holds a dataset we know
(``kspace``, ``reconstruction*``, ``sino*``/``proj*``, ``image*``, ``mask*``). Complex data is
shown as magnitude (log-magnitude for k-space) with the complex array kept in the layer's
metadata, where the reconstruction dock finds it.

Reader options: :func:`read_layers` takes the ``key`` (variable / dataset) and ``slice_index``
that ``engine.io.read`` takes (the CLI's ``--key`` / ``--slice``); every layer records what it was
read from under ``metadata["unrollrecon"]``: ``file``, ``key`` and ``slice`` (None = all), so the
dock's file chooser (:mod:`._widgets._chooser`) can offer the file's other arrays and slices
(``engine.io.list_arrays``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_unrollrecon import META_KEY

_H5_PREFIXES = ("kspace", "reconstruction", "sino", "proj", "image", "img", "mask", "target")
_EXTS = (".h5", ".hdf5", ".mat", ".npy", ".npz")


def get_reader(path):
    """Return a reader function for ``path``, or None when this plugin should not read it."""
    if isinstance(path, (list, tuple)):
        if len(path) != 1:
            return None
        path = path[0]
    p = Path(str(path))
    ext = p.suffix.lower()
    if ext not in _EXTS or not p.is_file():
        return None
    try:
        key = _sniff(p, ext)
    except Exception:  # noqa: BLE001 - a file we cannot even sniff is not ours to claim
        return None
    if key is False:
        return None
    return lambda _path: read_layers(p, key)


def _sniff(p: Path, ext: str):
    """A dataset key to read (None = let engine.io choose), or False to decline the file."""
    if ext in (".h5", ".hdf5"):
        import h5py

        with h5py.File(p, "r") as f:
            names = [n for n in f.keys() if isinstance(f[n], h5py.Dataset)]
        if "reconstruction" in names:
            return "reconstruction"
        if "kspace" in names:
            return "kspace"
        ours = [n for n in names if n.lower().startswith(_H5_PREFIXES)]
        return ours[0] if len(ours) == 1 else False
    if ext == ".npy":
        arr = np.load(p, mmap_mode="r", allow_pickle=False)
        return None if arr.ndim >= 2 and arr.dtype.kind in "biufc" else False
    from napari_unrollrecon.engine.io import list_variables

    return None if list_variables(p) else False


def read_layers(path, key=None, slice_index=None):
    """Read ``path`` with ``engine.io`` and return napari LayerData tuples: one layer, or one per
    array of a .mat / .npz holding several (named ``file:array``), so the dock's data, reference and
    mask choosers can pick among them. ``key`` / ``slice_index`` choose one array / slice, as
    ``engine.io.read`` (the name then says which: ``file:array [slice 3]``)."""
    from napari_unrollrecon.engine import io

    p = Path(path)
    if key is None and slice_index is None and p.suffix.lower() in (".mat", ".npz"):
        names = list(io.list_variables(p))
        if len(names) > 1:
            return [layer for name in names for layer in _layer(p, name, f"{p.stem}:{name}")]
    title = None if key is None or len(io.list_variables(p)) < 2 else f"{p.stem}:{key}"
    if slice_index is not None:
        title = f"{title or p.stem} [slice {slice_index}]"
    return _layer(p, key, title, slice_index)


def _layer(p: Path, key, title, slice_index=None):
    from napari_unrollrecon.engine import io

    loaded = io.read(p, key=key, slice_index=slice_index)
    info = {"kind": loaded.kind, "file": str(p), "key": loaded.meta.get("key"),
            "slice": loaded.meta.get("slice_index"), "file_meta": _plain(loaded.meta)}
    if key == "reconstruction" and p.suffix.lower() in (".h5", ".hdf5"):
        saved = io.read_meta(p)
        info.update(kind="reconstruction", **saved)
        mask = _h5_dataset(p, "mask")
        if mask is not None:
            info["mask"] = mask
    data = loaded.data
    name = (title or p.stem) + ("" if loaded.kind == "image" else f" ({loaded.kind})")
    if np.iscomplexobj(data):
        info["complex"] = data
        if loaded.kind == "kspace":
            a = np.abs(data)
            data = np.log1p(a / (1e-4 * max(float(a.max()), 1e-30))).astype(np.float32)
            info["display"] = "log magnitude; complex k-space kept here"
        else:
            data = np.abs(data).astype(np.float32)
    return [(data, {"name": name, "metadata": {META_KEY: info}}, "image")]


def _h5_dataset(path: Path, name: str):
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f[name]) if name in f else None


def _plain(meta: dict) -> dict:
    """Drop non-serialisable entries so layer metadata stays simple."""
    return {k: v for k, v in meta.items() if isinstance(v, (str, int, float, bool, list, tuple, dict, type(None)))}
