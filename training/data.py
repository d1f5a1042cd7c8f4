"""Training data: sources (image folders, .mat collections, HDF5), patches, flips, validation split.

Every source yields 2-D ground-truth images; the method's ``make_batch`` simulates measurements
from them on the fly. Images are held in memory (the largest set here, SIAT500, is 245 MB as
complex64), so batches cost no disk I/O and no loader processes - 2 cores have none to spare.

Leakage guards (../shared/datasets/README.md):

* sources inside a benchmark test set (the 50 ISTA-Net brain PNGs, HGGDP test31, the AAPM CT
  slices, the ADMM-Net chest test and brain demo images) are refused, and so are single test files
  in folders that also hold training data (heart patient 33 beside training patients 31 and 32);
* SIAT500 rows come only from blocks without an HGGDP test slice (source_index 41-60, 81-120,
  401-500) while ``exclude_test31_neighbours`` is on (the default);
* a train image that is also a validation image is an error.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]

#: Folders (relative to the data root) holding benchmark test images, with the reason.
TEST_SETS = {
    "ISTA-Net-PyTorch": "the 50 brain test images of the ADMM-Net / ISTA-Net+ / CGPD-CSNet tables",
    "HGGDP/hggdp_rec/test_image31": "the 31 HGGDP test images",
    "GMSD-AAPM-CT": "the 12 AAPM CT test slices",
    "Deep-ADMM-Net/data/Chest_data": "the 50 ADMM-Net chest test images",
    "Deep-ADMM-Net/data/Brain_data": "copies of ISTA-Net brain test images 11 and 50",
    "CGPD-CSNet/data/BrainImages_test": "copies of the 50 ISTA-Net brain test images",
}
#: Test files inside folders that also hold training data: (folder, glob, reason). Patients 31
#: and 32 of the CGPD-CSNet heart set train the dynamic score models; patient 33 is their test.
TEST_FILES = (
    ("CGPD-CSNet/data/heart_test", "mr_heart_p33*", "heart patient 33, the dynamic (DD-UGM) test series"),
)
#: SIAT500 source_index blocks that contain no HGGDP test slice (SIAT500/SOURCE.md).
SIAT_SAFE_BLOCKS = ((41, 60), (81, 120), (401, 500))
SIAT_DEFAULT = "SIAT500/siat500.h5"


class DataError(ValueError):
    """Training data that cannot be used; the message names the source and what to do."""


@dataclass
class ImageSet:
    """2-D images (float32 or complex64) with stable ids ("file#row") and a description."""

    images: list = field(default_factory=list)
    ids: list = field(default_factory=list)
    sources: list = field(default_factory=list)

    def __len__(self):
        return len(self.images)

    def extend(self, other: "ImageSet") -> None:
        self.images += other.images
        self.ids += other.ids
        self.sources += other.sources


def data_root(configured: str = "") -> Path:
    """``data.root``, else $UNROLLRECON_DATA, else <repo>/../shared/datasets."""
    root = configured or os.environ.get("UNROLLRECON_DATA") or str(REPO / ".." / "shared" / "datasets")
    return Path(root).expanduser().resolve()


def target_kind(target: str, modalities) -> str:
    """Resolve ``data.target = auto``: real images for CT-only methods, complex otherwise."""
    if target != "auto":
        return target
    return "real" if tuple(modalities) == ("ct",) else "complex"


# --------------------------------------------------------------------------- loading
def build(data_cfg: dict, modalities=("mri",)) -> tuple[ImageSet, ImageSet, dict]:
    """Load the train and validation images of a [data] config; returns (train, val, description)."""
    root = data_root(data_cfg["root"])
    target = target_kind(data_cfg["target"], modalities)
    train, val = ImageSet(), ImageSet()
    for src in data_cfg["train"]:
        part = load_source(src, root, target, data_cfg)
        if not data_cfg["val"]:
            part, held = _split_tail(part, data_cfg["val_split"])
            val.extend(held)
        train.extend(part)
    for src in data_cfg["val"]:
        val.extend(load_source(src, root, target, data_cfg))
    if data_cfg["val_limit"]:
        val = ImageSet(val.images[: data_cfg["val_limit"]], val.ids[: data_cfg["val_limit"]], val.sources)
    check_disjoint(train, val)
    if not len(train) or not len(val):
        raise DataError(f"empty {'training' if not len(train) else 'validation'} set after selection; "
                        "check the sources' paths, patterns and select ranges")
    describe = {"root": str(root), "target": target, "train": train.sources, "val": val.sources,
                "n_train": len(train), "n_val": len(val), "patch": data_cfg["patch"],
                "exclude_test31_neighbours": data_cfg["exclude_test31_neighbours"]}
    return train, val, describe


def load_source(src: dict, root: Path, target: str, data_cfg: dict) -> ImageSet:
    """Read one source table into an :class:`ImageSet` (converted to ``target``, normalised)."""
    kind = src.get("kind", "files")
    if kind == "synthetic":
        arrays, ids, path = _synthetic(src), None, None
    else:
        path = _resolve(src.get("path") or SIAT_DEFAULT, root)
        guard_test_sets(path, root)
        if kind == "siat500" or path.name == "siat500.h5":
            arrays, ids = _siat500(path, src, data_cfg["exclude_test31_neighbours"])
        elif kind == "h5":
            arrays, ids = _h5(path, src)
        else:
            arrays, ids = _files(path, src, root)
    if src.get("limit"):
        arrays, ids = arrays[: src["limit"]], ids[: src["limit"]] if ids else None
    norm = src.get("normalise", data_cfg["normalise"])
    images = [_prepare(a, target, norm, src) for a in arrays]
    name = src.get("path") or f"synthetic(seed={src.get('seed', 0)})"
    ids = ids or [f"{name}#{i}" for i in range(len(images))]
    info = {k: v for k, v in src.items() if k != "kind"} | {"kind": kind, "n": len(images)}
    if path is not None:
        info["terms"] = dataset_terms(path, root)
    return ImageSet(images, ids, [info])


def _resolve(path: str, root: Path) -> Path:
    p = Path(path).expanduser()
    p = p if p.is_absolute() else root / p
    if not p.exists():
        raise DataError(f"training data {p} does not exist; set data.root or $UNROLLRECON_DATA to the folder "
                        f"holding it (now {root})")
    return p.resolve()


def guard_test_sets(path: Path, root: Path) -> None:
    """Refuse a source that lies inside (or contains) a benchmark test set."""
    parts = Path(path).resolve().parts
    for rel, reason in TEST_SETS.items():
        sub = Path(rel).parts
        inside = any(parts[i:i + len(sub)] == sub for i in range(len(parts) - len(sub) + 1))
        contains = (root / rel).resolve().is_relative_to(Path(path).resolve()) and (root / rel).exists()
        if inside or contains:
            raise DataError(f"{path} {'is in' if inside else 'contains'} {rel}: {reason}, a benchmark test set "
                            "that must never be trained on; choose a training source (datasets/README.md)")


def guard_test_files(files, root: Path) -> None:
    """Refuse any file matching :data:`TEST_FILES` (a test image among training images)."""
    for f in files:
        f = Path(f).resolve()
        for folder, pattern, reason in TEST_FILES:
            if f.parent == (root / folder).resolve() and f.match(pattern):
                raise DataError(f"{f.name} is {reason}: never train on it; narrow the source's pattern "
                                "(e.g. mr_heart_p3[12]*.png)")


def dataset_terms(path: Path, root: Path) -> str:
    """The licence line of the dataset's SOURCE.md (model cards must say what they trained on)."""
    try:
        top = Path(path).resolve().relative_to(root.resolve()).parts[0]
        text = (root / top / "SOURCE.md").read_text()
    except (ValueError, OSError, IndexError):
        return ""
    m = re.search(r"^- Licen[cs]e:?\s*(.+)$", text, flags=re.M | re.I)
    return m.group(1).strip()[:300] if m else ""


def _selected(numbers, select) -> np.ndarray:
    """Boolean mask of ``numbers`` inside any inclusive [a, b] range of ``select`` (all if none)."""
    numbers = np.asarray(numbers)
    if not select:
        return np.ones(numbers.shape, bool)
    return np.any([(numbers >= a) & (numbers <= b) for a, b in select], axis=0)


def _files(folder: Path, src: dict, root: Path):
    from napari_unrollrecon.engine import io

    if folder.is_file():
        files = [folder]
    else:
        pattern = src.get("pattern")
        files = sorted(folder.glob(pattern), key=_natural) if pattern else io.list_data_files(folder)
    files = [f for f, keep in zip(files, _selected(np.arange(1, len(files) + 1), src.get("select"))) if keep]
    if not files:
        raise DataError(f"no data files in {folder} (pattern {src.get('pattern')!r}, select {src.get('select')})")
    guard_test_files(files, root)
    arrays, ids = [], []
    for f in files:
        a = io.read(f, kind="image", key=src.get("key")).data
        frames = a if a.ndim == 3 else a[None]
        arrays += list(frames)
        ids += [f"{f}#{i}" for i in range(len(frames))]
    return arrays, ids


def _natural(p: Path):
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", p.name)]


def _h5(path: Path, src: dict, index_dataset: str | None = None):
    import h5py

    with h5py.File(path, "r") as f:
        if src["dataset"] not in f:
            raise DataError(f"{path} has no dataset {src['dataset']!r}; it has {sorted(f)}")
        ds = f[src["dataset"]]
        index_name = src.get("index_dataset", index_dataset)
        numbers = f[index_name][:] if index_name else np.arange(1, ds.shape[0] + 1)
        rows = np.flatnonzero(_selected(numbers, src.get("select")))
        data = ds[rows] if len(rows) else np.zeros((0, *ds.shape[1:]), ds.dtype)
    layout = src.get("layout", "real")
    if layout == "ri":
        data = data[:, 0].astype(np.float32) + 1j * data[:, 1].astype(np.float32)
    ids = [f"{path}#{int(n)}" for n in numbers[rows]]
    return list(data), ids


def _siat500(path: Path, src: dict, exclude_neighbours: bool):
    """SIAT500 rows (complex), restricted to the test-free blocks when ``exclude_neighbours``."""
    import h5py

    select = src.get("select") or [[1, 500]]
    if exclude_neighbours:
        select = _intersect(select, SIAT_SAFE_BLOCKS)
        if not select:
            raise DataError(f"SIAT500 select {src.get('select')} lies entirely in blocks with HGGDP test slices; "
                            f"with exclude_test31_neighbours only {SIAT_SAFE_BLOCKS} may be used")
    with h5py.File(path, "r") as f:
        if "source_index" not in f:
            raise DataError(f"{path} has no source_index dataset; is it the SIAT500 file of datasets/SIAT500?")
    spec = dict(src, dataset=src.get("dataset", "image_ri"), layout=src.get("layout", "ri"), select=select)
    return _h5(path, spec, index_dataset="source_index")


def _intersect(ranges, allowed):
    out = []
    for a, b in ranges:
        for lo, hi in allowed:
            if max(a, lo) <= min(b, hi):
                out.append([max(a, lo), min(b, hi)])
    return out


def _synthetic(src: dict) -> list:
    """Random ellipse phantoms in [0, 1] (CI and smoke tests run without the shared data)."""
    n, size = int(src.get("n", 32)), int(src.get("size", 64))
    rng = np.random.default_rng(src.get("seed", 0))
    yy, xx = np.mgrid[-1:1:size * 1j, -1:1:size * 1j]
    out = []
    for _ in range(n):
        img = np.zeros((size, size), np.float32)
        for _ in range(rng.integers(3, 8)):
            cy, cx = rng.uniform(-0.5, 0.5, 2)
            ay, ax = rng.uniform(0.1, 0.6, 2)
            t = rng.uniform(0, np.pi)
            u = (xx - cx) * np.cos(t) + (yy - cy) * np.sin(t)
            v = -(xx - cx) * np.sin(t) + (yy - cy) * np.cos(t)
            img[(u / ax) ** 2 + (v / ay) ** 2 <= 1] += rng.uniform(0.2, 1.0)
        out.append(img)
    return out


def _prepare(a: np.ndarray, target: str, norm: str, src: dict) -> np.ndarray:
    """Offset / clip, convert to the target kind, normalise per image."""
    a = np.asarray(a)
    if a.ndim != 2:
        raise DataError(f"source {src.get('path')}: expected 2-D images, got shape {a.shape}")
    if src.get("downsample", 1) > 1:  # n×n block means (e.g. 512² CT slices to 256²)
        n = int(src["downsample"])
        h, w = a.shape[0] // n * n, a.shape[1] // n * n
        a = a[:h, :w].reshape(h // n, n, w // n, n).mean(axis=(1, 3))
    if src.get("fit"):
        from napari_unrollrecon.engine.io import fit_shape

        a = fit_shape(a, src["fit"])
    if not np.iscomplexobj(a):
        a = a.astype(np.float32) + np.float32(src.get("offset", 0.0))
        if src.get("clip"):
            a = np.clip(a, *src["clip"])
    if target == "real":
        a = np.abs(a).astype(np.float32) if np.iscomplexobj(a) else a.astype(np.float32)
    elif target == "magnitude":
        a = np.abs(a).astype(np.complex64)
    else:
        a = a.astype(np.complex64)
    return _normalise(a, norm)


def _normalise(a: np.ndarray, norm: str) -> np.ndarray:
    if norm == "max":
        peak = float(np.abs(a).max())
        return a / peak if peak > 0 else a
    if norm == "minmax":
        if np.iscomplexobj(a):
            raise DataError("normalise = 'minmax' needs real images; use 'max' for complex data")
        lo, hi = float(a.min()), float(a.max())
        return (a - lo) / (hi - lo) if hi > lo else a - lo
    return a


def _split_tail(part: ImageSet, fraction: float) -> tuple[ImageSet, ImageSet]:
    """Hold out the last ``fraction`` of a source (contiguous, so neighbouring slices stay together)."""
    n_val = max(1, int(round(len(part) * fraction))) if fraction > 0 else 0
    if n_val >= len(part):
        raise DataError(f"val_split {fraction} leaves no training images in {part.sources[0].get('path')}")
    cut = len(part) - n_val
    info = part.sources[0]
    return (ImageSet(part.images[:cut], part.ids[:cut], [info | {"n": cut, "split": "head"}]),
            ImageSet(part.images[cut:], part.ids[cut:], [info | {"n": n_val, "split": "tail (validation)"}]))


def check_disjoint(train: ImageSet, val: ImageSet) -> None:
    both = sorted(set(train.ids) & set(val.ids))
    if both:
        raise DataError(f"{len(both)} images are in both the training and the validation set "
                        f"(e.g. {both[:2]}); make the [[data.val]] selection disjoint")


# --------------------------------------------------------------------------- batches
class PatchSampler:
    """Random images, random square patches and flips, drawn from a numpy Generator."""

    def __init__(self, images: ImageSet, patch: int = 0, flips: bool = True, rot90: bool = False):
        self.images, self.patch, self.flips, self.rot90 = images.images, int(patch), flips, rot90
        shapes = {im.shape for im in self.images}
        if self.patch:
            small = [s for s in shapes if min(s) < self.patch]
            if small:
                raise DataError(f"patch {self.patch} is larger than images of shape {small[0]}; lower data.patch")
        elif len(shapes) > 1:
            raise DataError(f"images of different shapes {sorted(shapes)[:3]}: set data.patch to train on patches")

    def batch(self, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.stack([self._one(rng) for _ in range(n)])

    def _one(self, rng):
        img = self.images[rng.integers(len(self.images))]
        if self.patch:
            y = rng.integers(img.shape[0] - self.patch + 1)
            x = rng.integers(img.shape[1] - self.patch + 1)
            img = img[y:y + self.patch, x:x + self.patch]
        if self.flips:
            if rng.random() < 0.5:
                img = img[:, ::-1]
            if rng.random() < 0.5:
                img = img[::-1, :]
        if self.rot90 and img.shape[0] == img.shape[1]:
            img = np.rot90(img, int(rng.integers(4)))
        return np.ascontiguousarray(img)


def validation_images(images: ImageSet, crop: int = 0) -> list[np.ndarray]:
    """The validation images, centre-cropped to ``crop`` (deterministic: the same every time)."""
    out = []
    for im in images.images:
        if crop and min(im.shape) >= crop:
            y, x = (im.shape[0] - crop) // 2, (im.shape[1] - crop) // 2
            im = im[y:y + crop, x:x + crop]
        out.append(np.ascontiguousarray(im))
    return out
