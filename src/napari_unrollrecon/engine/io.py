"""Readers and writers for the files users bring: images, k-space, sinograms and masks.

Every unusable file raises one error type, :class:`UnusableFileError`, whose message names the
file, the problem and what to do.  :func:`read` returns a :class:`Loaded` (array, kind, meta).

Formats read
------------
* ``.npy`` / ``.npz`` - always with ``allow_pickle=False`` (a user file is never unpickled).
* ``.png`` ``.tif`` ``.tiff`` (also ``.jpg`` ``.jpeg`` ``.bmp``) - grayscale; RGB(A) whose colour
  channels are equal is reduced to one channel (noted in ``meta["notes"]``), true colour is refused.
  Integer intensities keep their values (an 8-bit PNG stays 0-255, as float32).
* ``.mat`` - MATLAB v5 (scipy) and v7.3 (HDF5; arrays transposed to MATLAB orientation, compound
  ``(real, imag)`` turned into complex).
* ``.h5`` / ``.hdf5`` - fastMRI files (dataset ``kspace``), files from :func:`write` (dataset
  ``reconstruction``, taken first even beside other datasets) and any HDF5 with numeric datasets.
* ``.dcm`` (or any file with the DICOM magic) - needs the optional ``pydicom``; RescaleSlope and
  RescaleIntercept are applied.

Choosing the variable
---------------------
``key`` picks a variable / dataset.  Without it the single numeric array with at least two
dimensions larger than one is taken (MATLAB stores scalars as 1x1, hence "larger than one");
otherwise the error lists the candidates with their shapes.  :func:`list_variables` gives the
same list to a caller that wants to offer a choice; :func:`list_arrays` adds each array's dtype and
slices (from the headers alone), for the dock's chooser and the napari reader's layer metadata.

Slices
------
``slice_index`` picks one frame of a 3-D/4-D array, read lazily where the format allows
(``.npy`` memory map, HDF5).  The frame axis is the first one, except for MATLAB arrays, whose
frames are conventionally last (``H x W x T``).  fastMRI ``kspace`` defaults to the middle slice.

fastMRI and multi-coil data
---------------------------
fastMRI stores k-space centred with the image centred - our convention (``physics/fft.py``) - so
it is used as is.  Single-coil ``(slices, H, W)``: kind ``"kspace"`` (``kind="image"`` gives
``ifft2c`` of it, complex).  Multi-coil ``(slices, coils, H, W)``: the package's methods are
single-coil, so ``kind="auto"``/``"image"`` returns the root-sum-of-squares magnitude image
(:func:`rss_image`, ``meta["combination"] = "rss"``) on which simulated single-coil
reconstruction runs; ``kind="kspace"`` is refused with a message pointing to ``kind="image"`` or
to one coil's k-space via ``key="coil:3"``.  ``key="reconstruction_rss"`` /
``"reconstruction_esc"`` read those reference images (middle slice by default).

``kind="auto"``
---------------
1. fixed by the source (fastMRI ``kspace`` -> k-space, RSS -> image);
2. a variable named ``sino*`` / ``proj*`` -> ``"sinogram"``, one whose name contains ``mask``
   -> ``"mask"``;
3. complex data whose energy is concentrated like k-space -> ``"kspace"``: more than half of
   ``|x|^2`` lies in the central ``H/8 x W/8`` block (centred k-space, ``meta["centred"]=True``)
   or in the same-sized block around index ``[0, 0]`` with wrap-around (uncentred,
   ``meta["centred"]=False``; convert with ``physics.fft.kspace_from_convention``).  On the 31
   complex HGGDP brain images this fraction is at most 0.06 for the images and at least 0.85 for
   their k-space.  A tiny bright object at the centre of an otherwise empty complex image could be
   taken for k-space - pass ``kind="image"`` then;
4. otherwise ``"image"``.  Real data is never guessed to be k-space.

Output dtypes: images and sinograms float32 (complex images complex64), k-space complex64,
masks float32.  Singleton axes are squeezed (noted in ``meta["squeezed_from"]``); 2 to 4
dimensions are accepted.
"""

from __future__ import annotations

import errno
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from napari_unrollrecon.engine import memory

KINDS = ("auto", "image", "kspace", "sinogram", "mask")
PICTURE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")
DATA_EXTS = (".npy", ".npz", ".mat", ".h5", ".hdf5", ".dcm", ".dicom") + PICTURE_EXTS
WRITE_EXTS = (".npy", ".h5", ".hdf5", ".tif", ".tiff")
_KSPACE_FRACTION = 0.5
_MAX_SPARSE = 1 << 26  # densify a sparse MATLAB matrix only up to this many elements
_MATLAB_NUMERIC = {
    "double", "single", "logical", "int8", "uint8", "int16", "uint16",
    "int32", "uint32", "int64", "uint64",
}


class UnusableFileError(ValueError):
    """A file that cannot be used; the message names the file, the problem and what to do."""


@dataclass
class Loaded:
    """One array read from a file, what it is, and where it came from."""

    data: np.ndarray
    kind: str  # "image" | "kspace" | "sinogram" | "mask"
    meta: dict = field(default_factory=dict)


def _fail(path, problem: str, todo: str = "") -> UnusableFileError:
    msg = f"{Path(path).name}: {problem}"
    return UnusableFileError(f"{msg}; {todo}" if todo else msg)


# --------------------------------------------------------------------------- public readers
FRAME_AXES = ("auto", "first", "last")


def read(path, kind: str = "auto", key: str | None = None, slice_index: int | None = None,
         frames: str = "auto") -> Loaded:
    """Read one array from ``path`` (see the module docstring for formats and rules).

    Parameters
    ----------
    path : str or Path
    kind : {"auto", "image", "kspace", "sinogram", "mask"}
    key : variable / dataset name for .mat/.h5/.npz; ``"coil:N"`` for one coil of fastMRI data.
    slice_index : frame of a 3-D/4-D array (fastMRI: default the middle slice).
    frames : where a 3-D array's frame axis is: "auto" (the short axis: MATLAB's H×W×T is moved to
        T×H×W and ``meta["frame_axis"]`` says so), "first" or "last".

    Returns
    -------
    Loaded

    Raises
    ------
    UnusableFileError
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}; got {kind!r}")
    if frames not in FRAME_AXES:
        raise ValueError(f"frames must be one of {FRAME_AXES}; got {frames!r}")
    path = _existing_file(path)
    reader = _READERS[_format_of(path)]
    data, meta, fixed = reader(path, key=key, slice_index=slice_index, kind=kind)
    meta = {"source": str(path), "name": path.stem, "key": key, "slice_index": slice_index,
            "notes": [], "frames": frames, **meta}
    return _finish(path, data, meta, kind, fixed)


def read_mask(path, key: str | None = None, centred: bool | None = None, frames: str = "auto"):
    """Read a sampling mask file: (centred mask, info saying what was assumed and why).

    The one reader of mask files (CLI, bench, training, dock): any format :func:`read` takes,
    then :func:`napari_unrollrecon.physics.masks.centred_mask` checks the values and detects
    (``centred=None``) or applies the layout."""
    from napari_unrollrecon.physics.masks import MaskError, centred_mask

    try:
        loaded = read(path, kind="mask", key=key, frames=frames)
    except UnusableFileError as exc:
        raise MaskError(str(exc)) from None
    used = loaded.meta.get("key")
    mask, info = centred_mask(loaded.data, centred, source=Path(path).name + (f" [{used}]" if used else ""),
                              key=used)
    info["message"] = "loaded " + info["message"]
    if loaded.meta.get("frame_axis"):
        info["message"] += f"; {loaded.meta['frame_axis']}"
    return mask, info


def read_many(path_or_folder, **kw) -> list[Loaded]:
    """Read a file, or every data file of a folder in natural name order (``im-2`` before ``im-10``).

    Folder rule: regular files only (no recursion), hidden files (leading ``.``) skipped, files
    kept when their extension is one of ``DATA_EXTS`` or, for other names, when they carry the
    DICOM magic.  ``kw`` is passed to :func:`read` for each file; an unusable data file raises.
    """
    p = Path(path_or_folder).expanduser()
    if p.is_file():
        return [read(p, **kw)]
    if not p.is_dir():
        raise _fail(p, "no such file or folder", "check the path")
    files = list_data_files(p)
    if not files:
        seen = sorted(x.name for x in p.iterdir())[:10]
        raise _fail(p, f"folder has no data files (found: {seen or 'nothing'})",
                    f"put files with one of {DATA_EXTS} in it")
    return [read(f, **kw) for f in files]


def list_data_files(folder) -> list[Path]:
    """Data files of ``folder`` by the rule of :func:`read_many`, in natural name order."""
    files = [f for f in Path(folder).iterdir() if f.is_file() and not f.name.startswith(".")]
    files = [f for f in files if f.suffix.lower() in DATA_EXTS or _is_dicom(f)]
    return sorted(files, key=_natural_key)


def fit_shape(a: np.ndarray, shape) -> np.ndarray:
    """Centre-crop or zero-pad the last two axes of ``a`` to ``shape`` (H, W)."""
    out = np.asarray(a)
    for axis, n in zip((-2, -1), shape):
        m = out.shape[axis]
        if m > n:
            out = np.take(out, np.arange((m - n) // 2, (m - n) // 2 + n), axis=axis)
        elif m < n:
            pad = [(0, 0)] * out.ndim
            pad[axis] = ((n - m) // 2, n - m - (n - m) // 2)
            out = np.pad(out, pad)
    return out


def list_variables(path) -> dict[str, tuple]:
    """Numeric variables of a .mat/.h5/.npz file: name -> shape (MATLAB orientation for .mat).

    Other single-array formats give ``{}``.
    """
    path = _existing_file(path)
    fmt = _format_of(path)
    if fmt == "npz":
        entries = _npz_entries(path)
    elif fmt == "mat" and not _is_hdf5(path):
        entries = _mat5_entries(path)
    elif fmt in ("mat", "h5"):
        with _open_h5(path) as f:
            entries = _h5_entries(f)
    else:
        return {}
    return {name: e["shape"] for name, e in entries.items() if e["usable"]}


@dataclass(frozen=True)
class ArrayInfo:
    """One array of a file as :func:`list_arrays` finds it in the headers: its ``key`` for
    :func:`read` (None for a single-array file), shape (MATLAB orientation for .mat), dtype, and
    the slices :func:`read` can pick with ``slice_index`` (``slices`` frames along ``slice_axis``;
    0 for a 2-D array; ``default_slice`` is what ``read`` takes without one, None = all)."""

    key: str | None
    shape: tuple
    dtype: str
    slices: int = 0
    slice_axis: int = 0
    default_slice: int | None = None

    def describe(self) -> str:
        """``"seq · 110×110×10 · double"`` (a chooser's row)."""
        return " · ".join([self.key or "(array)", "×".join(map(str, self.shape)) or "scalar", self.dtype])


def list_arrays(path) -> list[ArrayInfo]:
    """The numeric arrays of a file and their slices, from headers alone (nothing is loaded):
    the choices behind :func:`read`'s ``key`` / ``slice_index`` (the CLI's ``--key`` /
    ``--slice``, the dock's chooser). Pictures, TIFF and DICOM give ``[]``."""
    path = _existing_file(path)
    fmt = _format_of(path)
    if fmt == "npy":
        arr = _load_npy(path)
        shape, dtype = tuple(arr.shape), str(arr.dtype)
        del arr
        return [_array_info(None, shape, dtype, 0)] if sum(n > 1 for n in shape) >= 2 else []
    entries, fastmri = _entries_of(path, fmt)
    axis = -1 if fmt == "mat" else 0
    return [_array_info(name, e["shape"], e["descr"], axis, fastmri and name in _FASTMRI_SLICED)
            for name, e in entries.items() if e["usable"] and sum(n > 1 for n in e["shape"]) >= 2]


_FASTMRI_SLICED = ("kspace", "reconstruction_rss", "reconstruction_esc")  # read defaults to the middle slice


def _entries_of(path: Path, fmt: str) -> tuple[dict, bool]:
    """Header entries of a .npz/.mat/.h5 file and whether it is a fastMRI file."""
    if fmt == "npz":
        return _npz_entries(path), False
    if fmt == "mat" and not _is_hdf5(path):
        return _mat5_entries(path), False
    if fmt not in ("mat", "h5"):
        return {}, False
    try:
        with _open_h5(path) as f:
            return _h5_entries(f), "kspace" in f
    except (OSError, RuntimeError, KeyError) as e:
        raise _corrupt(path, "an HDF5 file", e) from None


def _array_info(key, shape, dtype: str, axis: int, middle: bool = False) -> ArrayInfo:
    shape = tuple(int(s) for s in shape)
    n = shape[axis] if len(shape) >= 3 else 0
    return ArrayInfo(key, shape, dtype, n, axis % max(len(shape), 1), n // 2 if middle and n else None)


def rss_image(kspace_coils) -> np.ndarray:
    """Root-sum-of-squares image ``sqrt(sum_c |ifft2c(k_c)|^2)`` over the coil axis (-3), float32.

    ``kspace_coils`` is centred k-space ``(coils, H, W)`` or ``(..., coils, H, W)``; a 2-D input
    is one coil.
    """
    import torch

    from napari_unrollrecon.physics.fft import ifft2c

    k = np.asarray(kspace_coils, dtype=np.complex64)
    bad = _non_finite(k)
    if bad:
        raise ValueError(f"coil k-space holds {bad} NaN/Inf value(s); one would spread over the whole "
                         "combined image; replace them (e.g. numpy.nan_to_num) first")
    x = ifft2c(torch.as_tensor(k)).abs()
    if x.ndim >= 3:
        x = torch.sqrt(torch.sum(x**2, dim=-3))
    return x.numpy().astype(np.float32)


# --------------------------------------------------------------------------- common checks
def _non_finite(a: np.ndarray) -> int:
    """How many values of ``a`` are NaN or infinite."""
    return int(a.size - np.count_nonzero(np.isfinite(a)))


def _existing_file(path) -> Path:
    path = Path(path).expanduser()
    if path.is_dir():
        raise _fail(path, "is a folder, not a file", "use read_many() for a folder")
    if not path.is_file():
        raise _fail(path, f"file not found ({path})", "check the path")
    return path.resolve()


def _format_of(path: Path) -> str:
    ext = path.suffix.lower()
    if ext in (".npy", ".npz", ".mat"):
        return ext[1:]
    if ext in (".h5", ".hdf5"):
        return "h5"
    if ext in (".tif", ".tiff"):
        return "tiff"
    if ext in PICTURE_EXTS:
        return "picture"
    if ext in (".dcm", ".dicom") or _is_dicom(path):
        return "dicom"
    raise _fail(path, f"unknown file type {ext or '(no extension)'!r}",
                f"use one of {', '.join(DATA_EXTS)}")


def _is_dicom(path: Path) -> bool:
    try:
        with open(path, "rb") as f:
            head = f.read(132)
    except OSError:
        return False
    return head[128:132] == b"DICM"


def _is_hdf5(path: Path) -> bool:
    import h5py

    return h5py.is_hdf5(path)


def _natural_key(p: Path):
    parts = re.split(r"(\d+)", p.name.lower())
    return [(0, int(s), "") if s.isdigit() else (1, 0, s) for s in parts]


def _corrupt(path, what: str, err: Exception) -> UnusableFileError:
    return _fail(path, f"could not be read as {what} ({type(err).__name__}: {err})",
                 "the file may be corrupt or of another type; re-export it")


def _finish(path, data, meta, kind, fixed) -> Loaded:
    """Validate, squeeze, decide the kind and convert the dtype."""
    data = _check_array(path, np.asarray(data))
    meta.setdefault("dtype", str(data.dtype))
    meta.setdefault("shape", tuple(data.shape))
    data = _squeeze(path, data, meta)
    data = _frames_first(path, data, meta)
    if kind == "auto":
        kind, meta["kind_reason"] = _guess_kind(data, meta, fixed)
    else:
        meta.setdefault("kind_reason", "requested")
    if kind == "kspace" and "centred" not in meta:
        meta["centred"] = {"centred": True, "uncentred": False}.get(_kspace_layout(data))
    return Loaded(_convert(path, data, kind, meta), kind, meta)


def _check_array(path, a: np.ndarray) -> np.ndarray:
    if a.dtype.kind not in "biufc":
        raise _fail(path, f"holds non-numeric data (dtype {a.dtype})",
                    "save the image as a numeric array")
    if a.size == 0:
        raise _fail(path, f"holds an empty array (shape {a.shape})", "save a non-empty image")
    if a.dtype.kind in "fc":
        bad = _non_finite(a)
        if bad:
            raise _fail(path, f"contains {bad} NaN/Inf value(s) out of {a.size}",
                        "replace them (e.g. numpy.nan_to_num) and save again")
        wide = a.dtype.itemsize > (8 if a.dtype.kind == "c" else 4)  # float64 / complex128
        peak = float(np.abs(a).max()) if wide else 0.0
        if peak > np.finfo(np.float32).max:  # would turn into Inf when read as float32
            raise _fail(path, f"holds values up to {peak:.3g}, beyond the float32 range the methods use",
                        "rescale the data and save again")
    return a


def _squeeze(path, a: np.ndarray, meta: dict) -> np.ndarray:
    big = tuple(s for s in a.shape if s != 1)
    if len(big) < 2:
        raise _fail(path, f"has shape {a.shape}; an image needs at least 2 dimensions larger than 1",
                    "save a 2-D (H, W) array")
    if len(big) > 4:
        raise _fail(path, f"has {len(big)} dimensions (shape {a.shape}); at most 4 are supported",
                    "pick one slice with slice_index or save a smaller array")
    if big != a.shape:
        meta["squeezed_from"] = tuple(a.shape)
        a = a.reshape(big)
    return a


_PICTURE_EXTS = (".png", ".tif", ".tiff", ".jpg", ".jpeg", ".bmp")


def _frames_first(path, a: np.ndarray, meta: dict) -> np.ndarray:
    """Put a 3-D series' frame axis first: (T, H, W). MATLAB files store cine data and k-t masks
    as H×W×T, so with ``frames="auto"`` the shortest axis, when last, is taken to be the frames."""
    how = meta.get("frames", "auto")
    if a.ndim != 3 or how == "first" or (how == "auto" and Path(path).suffix.lower() in _PICTURE_EXTS):
        return a
    if how == "last" or (a.shape[2] < min(a.shape[:2])):
        meta["frame_axis"] = (f"frame axis assumed last (H×W×T {a.shape}, the short axis) and moved first; "
                              "pass frames='first' if the first axis holds the frames")
        meta["notes"].append(meta["frame_axis"])
        return np.ascontiguousarray(np.moveaxis(a, -1, 0))
    return a


def _guess_kind(a: np.ndarray, meta: dict, fixed: str | None):
    if fixed:
        return fixed, f"from the {meta.get('format')} layout"
    name = str(meta.get("key") or "").rsplit("/", 1)[-1].lower()
    if name.startswith(("sino", "proj")):
        return "sinogram", f"variable name {name!r}"
    if "mask" in name:
        return "mask", f"variable name {name!r}"
    if np.iscomplexobj(a):
        layout = _kspace_layout(a)
        if layout:
            meta["centred"] = layout == "centred"
            return "kspace", f"complex with energy concentrated like {layout} k-space"
    return "image", "default"


def _kspace_layout(a: np.ndarray) -> str | None:
    """"centred" / "uncentred" when over half the energy sits in a central / corner block."""
    e = np.abs(a.astype(np.complex64, copy=False)) ** 2
    e = e.reshape(-1, *e.shape[-2:]).sum(0)
    total = float(e.sum())
    if total <= 0:
        return None
    h, w = e.shape
    bh, bw = max(1, h // 8), max(1, w // 8)
    r0, c0 = h // 2 - bh // 2, w // 2 - bw // 2
    if e[r0:r0 + bh, c0:c0 + bw].sum() / total > _KSPACE_FRACTION:
        return "centred"
    corner = np.roll(e, (bh // 2, bw // 2), axis=(0, 1))[:bh, :bw]
    if corner.sum() / total > _KSPACE_FRACTION:
        return "uncentred"
    return None


def _convert(path, a: np.ndarray, kind: str, meta: dict) -> np.ndarray:
    if kind == "kspace":
        if not np.iscomplexobj(a):
            meta["notes"].append("real data read as k-space (imaginary part zero)")
        return a.astype(np.complex64)
    if kind in ("sinogram", "mask") and np.iscomplexobj(a):
        raise _fail(path, f"holds complex data, which cannot be a {kind}",
                    f"save the real-valued {kind}, or read it with kind='image' or 'kspace'")
    if np.iscomplexobj(a):
        return a.astype(np.complex64)
    return a.astype(np.float32)


def _take_slice(path, arr, index, axis: int, meta: dict):
    """Frame ``index`` along ``axis`` of an array-like (h5 dataset, memmap) - reads only it."""
    if index is None:
        return arr
    n_dims = len(arr.shape)
    if n_dims < 3:
        raise _fail(path, f"slice_index={index} given but the data is 2-D (shape {arr.shape})",
                    "leave slice_index unset")
    n = arr.shape[axis]
    if not -n <= index < n:
        raise _fail(path, f"slice_index={index} is out of range for {n} slices", f"use 0..{n - 1}")
    meta.update(slice_index=int(index) % n, n_slices=n, slice_axis=axis % n_dims)
    sel = [slice(None)] * n_dims
    sel[axis] = int(index)
    return arr[tuple(sel)]


#: Bytes per element a read needs beyond the stored array: its float32 / complex64 working copies.
_READ_OVERHEAD = 16


def _guard_read(path, shape, itemsize: int, index=None, axis: int = 0) -> None:
    """Refuse, from the header alone, a read whose array would not fit the memory limit."""
    shape = [int(s) for s in shape]
    if index is not None and len(shape) >= 3:
        shape.pop(axis)
    try:
        memory.check(memory.array_bytes(shape, itemsize + _READ_OVERHEAD),
                     f"reading {Path(path).name} ({' × '.join(map(str, shape))} values)")
    except memory.MemoryLimitError as e:
        raise UnusableFileError(str(e)) from None


def _choose(path, key, entries: dict, what: str = "variable") -> str:
    """Name of the array to read: ``key``, else the single candidate; errors list the choices."""
    def listing(only_usable):
        rows = [f"{n} {e['shape']} {e['descr']}" for n, e in entries.items()
                if e["usable"] or not only_usable]
        return "; ".join(rows) or "none"

    if key is not None:
        if key not in entries:
            raise _fail(path, f"has no {what} {key!r} (available: {listing(False)})",
                        "pass one of these as key")
        if not entries[key]["usable"]:
            raise _fail(path, f"{what} {key!r} is {entries[key]['descr']}, not a numeric array",
                        f"choose a numeric {what} (numeric: {listing(True)})")
        return key
    cands = [n for n, e in entries.items() if e["usable"] and e["auto"]]
    if len(cands) == 1:
        return cands[0]
    if not cands:
        raise _fail(path, f"has no numeric array with at least 2 dimensions "
                          f"(contents: {listing(False)})", "save the image as a numeric 2-D array")
    raise _fail(path, f"has several arrays ({listing(True)})", f"choose one with key=<{what} name>")


def _entry(shape, dtype_ok: bool, descr: str, sparse: bool = False) -> dict:
    shape = tuple(int(s) for s in shape)
    big = sum(1 for s in shape if s > 1)
    return {"shape": shape, "usable": dtype_ok, "auto": dtype_ok and big >= 2 and not sparse,
            "descr": descr}


# --------------------------------------------------------------------------- numpy
def _load_npy(path):
    """Memory-map when possible (to read one slice only); plain load for what cannot be mapped."""
    try:
        return np.load(path, allow_pickle=False, mmap_mode="r")
    except ValueError:
        pass  # empty arrays and object dtypes cannot be mapped; the plain load tells which
    except Exception as e:
        raise _corrupt(path, "a .npy array", e) from None
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as e:
        if "allow_pickle" in str(e):
            raise _fail(path, "holds Python objects, which would need unpickling",
                        "for safety pickles are never loaded; save a numeric array") from None
        raise _corrupt(path, "a .npy array", e) from None
    except Exception as e:
        raise _corrupt(path, "a .npy array", e) from None


def _read_npy(path, key, slice_index, kind):
    arr = _load_npy(path)
    meta = {"format": "npy", "dtype": str(arr.dtype), "shape": tuple(arr.shape)}
    _guard_read(path, arr.shape, arr.dtype.itemsize, slice_index)
    data = np.array(_take_slice(path, arr, slice_index, 0, meta))
    del arr  # release the memory map
    return data, meta, None


def _npz_entries(path) -> dict:
    """Arrays of an .npz archive from their headers alone (nothing is loaded or unpickled)."""
    import zipfile

    fmt = np.lib.format
    entries = {}
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = info.filename.removesuffix(".npy")
                with zf.open(info) as fh:
                    version = fmt.read_magic(fh)
                    header = fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0
                    shape, _, dtype = header(fh)
                if dtype.hasobject:
                    entries[name] = _entry((), False, "Python objects (not loaded)")
                else:
                    entries[name] = _entry(shape, dtype.kind in "biufc", str(dtype))
                    entries[name]["itemsize"] = dtype.itemsize
    except Exception as e:
        raise _corrupt(path, "a .npz archive", e) from None
    return entries


def _read_npz(path, key, slice_index, kind):
    entries = _npz_entries(path)
    name = _choose(path, key, entries, "array")
    _guard_read(path, entries[name]["shape"], entries[name]["itemsize"])
    try:
        with np.load(path, allow_pickle=False) as z:
            arr = z[name]
    except Exception as e:
        raise _corrupt(path, "a .npz archive", e) from None
    meta = {"format": "npz", "key": name, "dtype": str(arr.dtype), "shape": tuple(arr.shape)}
    return _take_slice(path, arr, slice_index, 0, meta), meta, None


# --------------------------------------------------------------------------- pictures
def _read_picture(path, key, slice_index, kind):
    import imageio.v3 as iio

    import warnings

    from PIL import Image

    _guard_picture(path)
    try:
        with warnings.catch_warnings():  # the size was checked against our own memory limit above
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            arr = np.asarray(iio.imread(path))
    except Exception as e:
        raise _corrupt(path, "an image", e) from None
    meta = {"format": path.suffix.lower()[1:], "dtype": str(arr.dtype), "shape": tuple(arr.shape),
            "notes": []}
    if arr.ndim == 3 and arr.shape[-1] in (2, 3, 4):
        arr = _to_gray(path, arr, meta)
    return _take_slice(path, arr, slice_index, 0, meta), meta, None


def _guard_picture(path) -> None:
    """Pixel count from the header (PIL opens lazily), before anything is decoded."""
    import warnings

    from PIL import Image

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                w, h, bands = im.width, im.height, len(im.getbands())
                frames = getattr(im, "n_frames", 1)
    except Image.DecompressionBombError as e:
        raise _fail(path, f"is far too large to decode safely ({e})", "crop or downsample it") from None
    except Exception:
        return  # not a format PIL knows: the reader itself will say what is wrong
    _guard_read(path, (frames, h, w, bands), 1)


def _read_tiff(path, key, slice_index, kind):
    import tifffile

    try:
        with tifffile.TiffFile(path) as tf:
            series = tf.series[0]
            _guard_read(path, series.shape, np.dtype(series.dtype).itemsize)
            axes, arr = series.axes, series.asarray()
            desc = tf.pages[0].description
    except UnusableFileError:
        raise
    except Exception as e:
        raise _corrupt(path, "a TIFF image", e) from None
    meta = {"format": "tiff", "dtype": str(arr.dtype), "shape": tuple(arr.shape), "notes": []}
    written = _parse_description(desc)
    if written:
        meta["file_meta"] = written
    if axes.endswith("S") and arr.shape[-1] in (2, 3, 4):
        arr = _to_gray(path, arr, meta)
    return _take_slice(path, arr, slice_index, 0, meta), meta, None


def _to_gray(path, arr: np.ndarray, meta: dict) -> np.ndarray:
    """Drop alpha and reduce RGB whose channels agree; refuse true colour."""
    n = arr.shape[-1]
    if n in (2, 4):
        opaque = bool(np.all(arr[..., -1] == arr[..., -1].max()))
        meta["notes"].append("alpha channel dropped" + (" (fully opaque)" if opaque else ""))
        arr = arr[..., :-1]
    if arr.shape[-1] == 1:
        return arr[..., 0]
    rgb = arr.astype(np.float64)
    spread = float(np.max(rgb.max(-1) - rgb.min(-1)))
    scale = float(rgb.max() - rgb.min()) or 1.0
    if spread > 0.02 * scale:
        raise _fail(path, "is a colour (RGB) image; reconstruction needs one grayscale channel",
                    "convert it to grayscale (e.g. in an image editor or with skimage.color.rgb2gray)")
    meta["notes"].append(f"RGB with equal channels reduced to grayscale (max difference {spread:g})")
    return arr[..., 0] if spread == 0 else rgb.mean(-1)


# --------------------------------------------------------------------------- MATLAB v5
def _mat5_entries(path) -> dict:
    import scipy.io

    try:
        info = scipy.io.whosmat(path)
    except Exception as e:
        raise _corrupt(path, "a MATLAB .mat file", e) from None
    entries = {}
    for name, shape, cls in info:
        ok = cls in _MATLAB_NUMERIC or (cls == "sparse" and int(np.prod(shape)) <= _MAX_SPARSE)
        entries[name] = _entry(shape, ok, cls if ok else f"a MATLAB {cls}", sparse=cls == "sparse")
    return entries


def _read_mat(path, key, slice_index, kind):
    if _is_hdf5(path):
        return _read_h5(path, key, slice_index, kind, fmt="mat-v7.3")
    import scipy.io
    import scipy.sparse

    entries = _mat5_entries(path)
    name = _choose(path, key, entries)
    _guard_read(path, entries[name]["shape"], 16)  # MATLAB double complex at worst
    try:
        arr = scipy.io.loadmat(path, variable_names=[name])[name]
    except Exception as e:
        raise _corrupt(path, "a MATLAB .mat file", e) from None
    if scipy.sparse.issparse(arr):
        arr = arr.toarray()
    meta = {"format": "mat-v5", "key": name, "dtype": str(arr.dtype), "shape": tuple(arr.shape)}
    return _take_slice(path, arr, slice_index, -1, meta), meta, None


# --------------------------------------------------------------------------- HDF5 / MATLAB v7.3
def _open_h5(path):
    import h5py

    try:
        return h5py.File(path, "r")
    except Exception as e:
        raise _corrupt(path, "an HDF5 file", e) from None


def _mat_class(obj) -> str | None:
    c = obj.attrs.get("MATLAB_class")
    return c.decode() if isinstance(c, bytes) else (str(c) if c is not None else None)


def _h5_entry(ds) -> dict:
    mcls = _mat_class(ds)
    shape = ds.shape[::-1] if mcls else ds.shape
    names = ds.dtype.names
    if mcls and mcls not in _MATLAB_NUMERIC:
        return _entry(shape, False, f"a MATLAB {mcls}")
    if mcls and ds.attrs.get("MATLAB_empty"):
        return _entry((0,), True, "empty MATLAB array")
    if names:
        ok = set(names) in ({"real", "imag"}, {"r", "i"})
        return _entry(shape, ok, "complex" if ok else f"compound {names}")
    ok = ds.dtype.kind in "biufc"
    return _entry(shape, ok, str(ds.dtype) if ok else f"non-numeric ({ds.dtype})")


def _h5_entries(f) -> dict:
    """Datasets of an open HDF5 file (groups walked, MATLAB #refs# skipped) -> entry dicts."""
    import h5py

    entries = {}

    def visit(name, obj):
        if name.startswith("#") or "/#" in name:
            return
        if "/" in name and _mat_class(obj.parent):
            return  # a MATLAB struct's field or cell content, not a variable of its own
        if isinstance(obj, h5py.Dataset):
            entries[name] = _h5_entry(obj)
        elif _mat_class(obj) in ("struct", "cell", "function_handle"):
            entries[name] = _entry((), False, f"a MATLAB {_mat_class(obj)}")

    f.visititems(visit)
    return entries


def _h5_array(ds, index, path, meta, frame_axis=0) -> np.ndarray:
    """Read a dataset (one frame of it if ``index`` is set), in MATLAB orientation if MATLAB."""
    if ds.attrs.get("MATLAB_empty"):
        raise _fail(path, f"variable {ds.name.lstrip('/')!r} is an empty MATLAB array",
                    "save a non-empty image")
    _guard_read(path, ds.shape, ds.dtype.itemsize, index, frame_axis)
    arr = np.asarray(_take_slice(path, ds, index, frame_axis, meta) if index is not None else ds[()])
    if arr.dtype.names:
        re_, im_ = ("real", "imag") if "real" in arr.dtype.names else ("r", "i")
        arr = arr[re_] + 1j * arr[im_]
    if _mat_class(ds):
        arr = arr.T
        if "slice_axis" in meta:
            meta["slice_axis"] = len(ds.shape) - 1
    if _mat_class(ds) == "logical":
        arr = arr.astype(bool)
    return arr


def _read_h5(path, key, slice_index, kind, fmt="h5"):
    try:
        return _read_h5_file(path, key, slice_index, kind, fmt)
    except (OSError, RuntimeError, KeyError) as e:  # a damaged file fails inside h5py, anywhere
        raise _corrupt(path, "an HDF5 file", e) from None


def _read_h5_file(path, key, slice_index, kind, fmt):
    with _open_h5(path) as f:
        if "kspace" in f and (key is None or key == "kspace" or str(key).startswith("coil:")):
            return _read_fastmri(f, path, key, slice_index, kind)
        if key is not None and str(key).startswith("coil:"):
            raise _fail(path, f"key {key!r} needs a fastMRI 'kspace' dataset, which this file lacks",
                        "pass a dataset name as key")
        entries = _h5_entries(f)
        if key is None and entries.get("reconstruction", {}).get("usable"):
            key = "reconstruction"  # our own files (write) may carry extra datasets, e.g. a mask
        name = _choose(path, key, entries, "dataset")
        ds = f[name]
        is_mat = _mat_class(ds) is not None
        fmt = "mat-v7.3" if is_mat else fmt
        meta = {"format": fmt, "key": name, "dtype": str(ds.dtype), "shape": entries[name]["shape"]}
        fixed = None
        if "kspace" in f and name.startswith("reconstruction"):
            fixed = "image"
            if slice_index is None and ds.ndim == 3:
                slice_index = ds.shape[0] // 2
        arr = _h5_array(ds, slice_index, path, meta)
        meta["dtype"] = str(arr.dtype) if ds.dtype.names else meta["dtype"]
        if name == "reconstruction":
            meta["file_meta"] = _decode_attrs(ds.attrs)
    return arr, meta, fixed


def _read_fastmri(f, path, key, slice_index, kind):
    ds = f["kspace"]
    if ds.ndim not in (2, 3, 4):
        raise _fail(path, f"dataset 'kspace' has shape {ds.shape}; fastMRI layout is "
                          "(slices, H, W) or (slices, coils, H, W)", "re-export the k-space")
    meta = {"format": "fastmri-h5", "key": "kspace", "dtype": str(ds.dtype), "shape": ds.shape,
            "centred": True, "notes": ["fastMRI k-space: centred, image centred (our convention)"]}
    if ds.ndim == 2:
        k = _h5_array(ds, slice_index, path, meta)
    else:
        index = ds.shape[0] // 2 if slice_index is None else slice_index
        k = _h5_array(ds, index, path, meta)
    k = _check_array(path, k)  # a NaN in one coil would spread over the whole combined image
    coils = k.shape[0] if ds.ndim == 4 else 1
    meta["coils"] = coils
    if key is not None and key.startswith("coil:"):
        return _fastmri_coil(path, k, key, coils, meta)
    if kind in ("sinogram", "mask"):
        raise _fail(path, f"holds MRI k-space, which cannot be read as a {kind}",
                    "use kind='kspace' or 'image'")
    if coils > 1:
        if kind == "kspace":
            raise _fail(path, f"holds multi-coil k-space ({coils} coils); the reconstruction "
                              "methods here are single-coil",
                        "use kind='image' for the coil-combined (RSS) image, or key='coil:0' "
                        "for one coil's k-space")
        meta.update(combination="rss", key="kspace")
        meta["notes"].append(f"{coils} coils combined by root-sum-of-squares (magnitude image)")
        return rss_image(k), meta, "image"
    k = k.reshape(k.shape[-2:]) if ds.ndim == 4 else k
    if kind == "image":
        meta["combination"] = "ifft2c"
        return _ifft2c_np(k), meta, "image"
    return k, meta, "kspace"


def _fastmri_coil(path, k, key, coils, meta):
    try:
        c = int(key.split(":", 1)[1])
    except ValueError:
        raise _fail(path, f"key {key!r} is not of the form 'coil:N'", "e.g. key='coil:0'") from None
    if not 0 <= c < coils:
        raise _fail(path, f"coil {c} does not exist ({coils} coil(s))", f"use coil:0..coil:{coils - 1}")
    meta.update(coil=c, key=key)
    return (k[c] if k.ndim == 3 else k), meta, "kspace"


def _ifft2c_np(k: np.ndarray) -> np.ndarray:
    import torch

    from napari_unrollrecon.physics.fft import ifft2c

    return ifft2c(torch.as_tensor(np.asarray(k, dtype=np.complex64))).numpy()


# --------------------------------------------------------------------------- DICOM
def _read_dicom(path, key, slice_index, kind):
    try:
        import pydicom
    except ImportError:
        raise _fail(path, "reading DICOM needs the optional package pydicom",
                    "pip install napari-unrollrecon[dicom]") from None
    try:
        ds = pydicom.dcmread(path, force=path.suffix.lower() not in (".dcm", ".dicom"))
    except Exception as e:
        raise _corrupt(path, "a DICOM file", e) from None
    if "PixelData" not in ds:
        raise _fail(path, "is a DICOM file without pixel data", "choose an image DICOM file")
    try:
        raw = ds.pixel_array
    except Exception as e:
        raise _fail(path, f"DICOM pixel data could not be decoded ({e})",
                    "compressed DICOM may need pylibjpeg or gdcm installed") from None
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    meta = {"format": "dicom", "dtype": str(raw.dtype), "shape": tuple(raw.shape), "notes": [],
            "rescale_slope": slope, "rescale_intercept": intercept,
            "modality": str(ds.get("Modality", "")),
            "photometric": str(ds.get("PhotometricInterpretation", ""))}
    if "PixelSpacing" in ds:
        meta["pixel_spacing"] = [float(v) for v in ds.PixelSpacing]
    if meta["photometric"] == "MONOCHROME1":
        meta["notes"].append("MONOCHROME1 (high values display dark); values kept as stored")
    arr = raw
    if int(ds.get("SamplesPerPixel", 1)) > 1:
        arr = _to_gray(path, arr, meta)
    arr = arr.astype(np.float64) * slope + intercept if (slope, intercept) != (1, 0) else arr
    return _take_slice(path, arr, slice_index, 0, meta), meta, None


_READERS = {"npy": _read_npy, "npz": _read_npz, "picture": _read_picture, "tiff": _read_tiff,
            "mat": _read_mat, "h5": _read_h5, "dicom": _read_dicom}


# --------------------------------------------------------------------------- writers
def write(path, images: np.ndarray, meta: dict | None = None, extra: dict | None = None) -> Path:
    """Write ``images`` with ``meta``; returns the path written.

    ``extra``: more named arrays (posterior ``samples``, their ``std``), written as datasets of
    those names into ``.h5`` files; other formats cannot hold them and refuse a non-empty one.

    * ``.npy``: the array as given (dtype kept); metadata is not stored.
    * ``.h5``/``.hdf5``: dataset ``"reconstruction"``; each meta item an attribute of it, stored
      natively for str / numbers / numeric arrays and JSON-encoded otherwise (lists, dicts, None),
      the JSON-encoded names listed in the attribute ``"_json_keys"``.
    * ``.tif``/``.tiff``: tifffile, one page per leading index (stacks ``(N, H, W)``),
      ``{"shape": [...], "napari_unrollrecon": meta}`` as JSON in the image description.  Complex data is refused.
    """
    path = check_writable(path)
    ext = path.suffix.lower()
    arr = np.asarray(images)
    if arr.dtype.kind not in "biufc" or arr.size == 0:
        raise ValueError(f"cannot write {path.name}: need a non-empty numeric array, got "
                         f"dtype {arr.dtype} shape {arr.shape}")
    bad = _non_finite(arr)
    if bad:
        raise ValueError(f"refusing to write {path.name}: {bad} of {arr.size} values are NaN or infinite; "
                         "nothing was written")
    meta = {str(k): v for k, v in (meta or {}).items()}
    extra = {str(k): np.asarray(v) for k, v in (extra or {}).items() if v is not None}
    if extra and ext not in (".h5", ".hdf5"):
        raise ValueError(f"cannot write {', '.join(extra)} into {path.name}: only .h5 holds several arrays; "
                         "write to a .h5 file")
    writer = {".npy": lambda t: np.save(t, arr, allow_pickle=False), ".h5": lambda t: _write_h5(t, arr, meta, extra),
              ".hdf5": lambda t: _write_h5(t, arr, meta, extra)}.get(ext, lambda t: _write_tiff(t, arr, meta))
    return atomic_write(path, writer)


def atomic_write(path: Path, writer) -> Path:
    """``writer(tmp)`` into a hidden temporary file beside ``path``, then rename it into place: a
    failure (or a kill) mid-write never leaves a partial file nor destroys an earlier good one.
    A missing parent folder is created."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"cannot write {path}: cannot create its folder {path.parent} ({e.strerror})") from None
    tmp = path.with_name(f".{path.stem}.partial-{os.getpid()}{path.suffix}")
    try:
        writer(tmp)
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        why = "the disk is full" if e.errno == errno.ENOSPC else (e.strerror or str(e))
        raise ValueError(f"cannot write {path}: {why}; nothing was written (an existing file is kept)") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def check_writable(path, exts: tuple = WRITE_EXTS) -> Path:
    """The output path, if :func:`write` (or a writer of ``exts``) can write there: not a folder,
    a known extension."""
    path = Path(path).expanduser()
    ext = path.suffix.lower()
    if path.is_dir():
        raise ValueError(f"cannot write {path}: it is a folder; give a file name such as {path / ('out' + exts[0])}")
    if ext not in exts:
        raise ValueError(f"cannot write {path.name}: unknown extension {ext!r}; use one of {exts}")
    return path


def check_output(output, inputs, exts: tuple = WRITE_EXTS) -> None:
    """Check an output before a run: writable (:func:`check_writable` with ``exts``), not one of
    the inputs, not in an input folder read in full (the next run would read it back as an input)."""
    out = check_writable(output, exts).resolve()
    for given in inputs:
        if given is None:
            continue
        src = Path(given).expanduser().resolve()
        if src.is_dir() and out.parent == src:
            raise ValueError(f"output {out.name} would be written into the input folder {src}, whose files are all "
                             "read as inputs; write it elsewhere")
        if out == src:
            raise ValueError(f"output {out} is the input file; choose another output name (the input is never "
                             "overwritten)")


def _jsonable(o):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, complex):
        return [o.real, o.imag]
    return str(o)


def _native_attr(v) -> bool:
    if isinstance(v, (str, bool, int, float, np.number, np.bool_)):
        return True
    return isinstance(v, np.ndarray) and v.dtype.kind in "biufc"


def _write_h5(path, arr, meta, extra=None):
    import h5py

    json_keys = []
    with h5py.File(path, "w") as f:
        for name, value in (extra or {}).items():
            f.create_dataset(name, data=value)
        ds = f.create_dataset("reconstruction", data=arr)
        for k, v in meta.items():
            if _native_attr(v):
                ds.attrs[k] = v
            else:
                ds.attrs[k] = json.dumps(v, default=_jsonable)
                json_keys.append(k)
        ds.attrs["_json_keys"] = json.dumps(json_keys)


def _write_tiff(path, arr, meta):
    import tifffile

    if np.iscomplexobj(arr):
        raise ValueError(f"cannot write {path.name}: TIFF cannot hold complex data; "
                         "write the magnitude (np.abs) or use .npy / .h5")
    if arr.dtype == bool:
        arr = arr.astype(np.uint8)
    # tifffile reads a JSON description as its "shaped" metadata, which needs the shape
    desc = json.dumps({"shape": list(arr.shape), "napari_unrollrecon": meta}, default=_jsonable)
    tifffile.imwrite(path, arr, photometric="minisblack", description=desc, metadata=None)


def read_meta(path) -> dict:
    """Metadata written by :func:`write`: h5 attributes / TIFF description; ``{}`` for .npy."""
    path = _existing_file(path)
    fmt = _format_of(path)
    if fmt == "h5":
        with _open_h5(path) as f:
            obj = f["reconstruction"] if "reconstruction" in f else f
            return _decode_attrs(obj.attrs)
    if fmt == "tiff":
        import tifffile

        try:
            with tifffile.TiffFile(path) as tf:
                return _parse_description(tf.pages[0].description)
        except Exception as e:
            raise _corrupt(path, "a TIFF image", e) from None
    return {}


def _decode_attrs(attrs) -> dict:
    json_keys = set(json.loads(attrs.get("_json_keys", "[]")))
    out = {}
    for k, v in attrs.items():
        if k == "_json_keys":
            continue
        if isinstance(v, bytes):
            v = v.decode()
        if k in json_keys:
            v = json.loads(v)
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def _parse_description(desc: str) -> dict:
    if not desc:
        return {}
    try:
        d = json.loads(desc)
    except ValueError:
        return {"description": desc}
    if isinstance(d, dict):
        return d.get("napari_unrollrecon", d)
    return {"description": desc}
