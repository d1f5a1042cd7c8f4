"""Qt-free run logic of the dock: input checks, problem building, throttling, resume planning.

Everything here works on numpy arrays, dicts and the engine; nothing imports napari or Qt, so
it is unit-tested without a display. The dock (``_dock.py``) only wires these to widgets.

The worker thread runs :func:`drive`, a generator that wraps ``engine.stream``: it yields one
:class:`Frame` per stage (so Stop and live changes act within one stage) but marks only those
that should reach the screen (at most ``max_rate`` per second plus the last one) and computes
the metrics only for those, which keeps 1000-step samplers cheap. It never raises: a failure
becomes an :class:`Outcome` with a message, because superqt's worker silently swallows a
``RuntimeError`` (the type torch raises) escaping a generator.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

META_KEY = "unrollrecon"  # our key in napari layer metadata
KINDS = ("image", "kspace", "sinogram")
KIND_LABELS = {"image": "image", "kspace": "k-space", "sinogram": "sinogram"}
MODALITIES = {"mri": "MRI", "dmri": "dynamic MRI", "ct": "CT"}
MAX_RATE = 20.0  # display updates per second


class InputError(ValueError):
    """A user input the dock cannot reconstruct from; the message says what to do."""


# --------------------------------------------------------------------------- layer input
def layer_array(data, metadata: dict | None) -> np.ndarray:
    """The array to reconstruct from: the complex original kept in metadata, else the layer data.

    napari cannot display complex arrays, so our readers and samples show a magnitude (or
    log-magnitude for k-space) and keep the complex data under ``metadata["unrollrecon"]``.
    """
    data = np.asarray(data)
    info = (metadata or {}).get(META_KEY, {})
    original = info.get("complex")
    if original is not None and tuple(np.shape(original)) == data.shape:
        return np.asarray(original)
    return data


def guess_kind(data, metadata: dict | None) -> str:
    """Input kind recorded by our reader/samples, else "image"."""
    kind = (metadata or {}).get(META_KEY, {}).get("kind")
    return kind if kind in KINDS else "image"


def guess_modality(kind: str, ndim: int) -> str:
    if kind == "sinogram":
        return "ct"
    return "dmri" if ndim == 3 else "mri"


def check_input(data, kind: str, modality: str, rgb: bool = False) -> np.ndarray:
    """Validate a layer's array for ``modality``; raise :class:`InputError` naming the fix."""
    if rgb:
        raise InputError("this is an RGB layer; reconstruction needs a single-channel image, k-space or sinogram")
    if kind not in KINDS:
        raise InputError(f"unknown input kind {kind!r}; choose image, k-space or sinogram")
    data = np.asarray(data)
    if data.dtype.kind not in "biufc":
        raise InputError(f"layer data of type {data.dtype} is not numeric")
    want = 3 if modality == "dmri" else 2
    if data.ndim != want:
        hint = {
            "mri": "choose 'dynamic MRI' for a (frames, H, W) series, or pick one 2D slice",
            "dmri": "a dynamic series must be (frames, H, W); choose 'MRI' for a single 2D slice",
            "ct": "CT works on one 2D slice or one 2D sinogram (views, detectors)",
        }[modality]
        raise InputError(f"{MODALITIES[modality]} needs a {want}D layer but this one has shape {data.shape}: {hint}")
    if modality == "ct" and kind == "kspace":
        raise InputError("k-space input is for MRI; for CT use an image or a sinogram")
    if modality != "ct" and kind == "sinogram":
        raise InputError("a sinogram is CT data; set the modality to CT")
    if min(data.shape[-2:]) < 8:
        raise InputError(f"layer of shape {data.shape} is too small to reconstruct (need at least 8×8)")
    if not np.all(np.isfinite(data)):
        raise InputError("the layer contains NaN or infinite values; clean or replace them first")
    if not np.any(data):
        raise InputError("the layer is all zeros; there is nothing to reconstruct")
    if modality == "ct" and kind == "image" and data.shape[0] != data.shape[1]:
        raise InputError(f"CT images must be square; this one is {data.shape[0]}×{data.shape[1]}")
    return data


def check_reference(reference, image_shape: tuple) -> np.ndarray:
    """Magnitude of a reference layer; it must have the shape of the reconstruction."""
    ref = np.abs(np.asarray(reference)).astype(np.float32)
    if ref.shape != tuple(image_shape):
        raise InputError(
            f"reference shape {ref.shape} does not match the reconstruction shape {tuple(image_shape)}; "
            "pick the ground-truth layer of this input or 'none'"
        )
    if not np.all(np.isfinite(ref)):
        raise InputError("the reference layer contains NaN or infinite values")
    return ref


# --------------------------------------------------------------------------- settings
@dataclass
class RunSettings:
    """What the dock's input section describes (everything except the method)."""

    modality: str = "mri"
    kind: str = "image"
    mask_kind: str = "cartesian"
    ratio: float = 0.25
    seed: int = 0
    center_fraction: float | None = None
    n_views: int = 60
    noise: float = 0.0
    device: str = "auto"

    def describe(self) -> str:
        if self.modality == "ct":
            return f"CT, {self.n_views} views"
        return f"{MODALITIES[self.modality]}, {self.mask_kind} mask {self.ratio:.0%}"


def make_mask(settings: RunSettings, shape: tuple) -> np.ndarray:
    """The sampling mask the settings describe, for data of ``shape`` ((H, W) or (T, H, W))."""
    from napari_unrollrecon.physics.masks import make_mask as _make

    return _make(settings.mask_kind, tuple(shape), settings.ratio, seed=settings.seed,
                 center_fraction=settings.center_fraction)


def check_mask(mask, shape: tuple) -> np.ndarray:
    """A user-supplied mask must match the data's (H, W) (and frames, if it has them)."""
    mask = np.asarray(mask)
    if mask.ndim not in (2, 3) or tuple(mask.shape[-2:]) != tuple(shape[-2:]) or (
        mask.ndim == 3 and (len(shape) != 3 or mask.shape[0] != shape[0])
    ):
        raise InputError(
            f"mask shape {mask.shape} does not match the data shape {tuple(shape)}; "
            "use a mask made for this size or choose a generated mask type"
        )
    if not np.all(np.isfinite(mask)) or not np.any(mask):
        raise InputError("the mask is empty or contains NaN; it samples nothing")
    return (mask != 0).astype(np.float32) if mask.dtype == bool else mask.astype(np.float32)


def subsample_views(sinogram: np.ndarray, n_views: int, arc: float = 180.0):
    """Keep ``n_views`` of a sinogram's evenly spread views: rows ``floor(i·V/n)`` (every k-th row
    when ``V/n`` is an integer). Returns (sinogram, angles in degrees or None when all are kept)."""
    total = sinogram.shape[0]
    if n_views >= total:
        return sinogram, None
    rows = (np.arange(n_views) * total) // n_views
    return sinogram[rows], rows * (arc / total)


@dataclass
class Prepared:
    """A built problem plus what the layers should remember about it."""

    problem: object
    mask: np.ndarray | None
    meta: dict


def build_problem(data: np.ndarray, settings: RunSettings, mask: np.ndarray | None = None) -> Prepared:
    """Turn a checked input array and settings into an engine ``Problem`` (may be slow for CT)."""
    from napari_unrollrecon.engine import problems
    from napari_unrollrecon.engine.device import pick_device

    device = pick_device(settings.device)
    meta = {"modality": settings.modality, "input_kind": settings.kind}
    if settings.modality == "ct":
        meta["views"] = settings.n_views
        if settings.kind == "sinogram":
            sino, angles = subsample_views(np.real(data).astype(np.float32), settings.n_views)
            meta["views"] = sino.shape[0]
            geometry = {} if angles is None else {"angles": angles}
            problem = problems.ct_from_sinogram(sino, device=device, meta=dict(meta), **geometry)
        else:
            problem = problems.ct_from_image(np.real(data).astype(np.float32), settings.n_views, device=device,
                                             noise=settings.noise, seed=settings.seed, meta=dict(meta))
        return Prepared(problem, None, meta)
    if mask is None:
        mask = make_mask(settings, data.shape)
        meta.update(mask_kind=settings.mask_kind, ratio=settings.ratio, seed=settings.seed)
    else:
        meta.update(mask_kind="custom")
    mask = check_mask(mask, data.shape)
    meta["realised_ratio"] = float(np.mean(mask != 0))
    if settings.kind == "kspace":
        problem = problems.mri_from_kspace(data, mask, device=device, meta=dict(meta))
    else:
        problem = problems.mri_from_image(data, mask, device=device, noise=settings.noise,
                                          seed=settings.seed, meta=dict(meta))
    return Prepared(problem, mask, meta)


def auto_reference(data: np.ndarray, kind: str) -> np.ndarray | None:
    """An image input is the ground truth of its own simulation; measured data has none."""
    return np.abs(data).astype(np.float32) if kind == "image" else None


# --------------------------------------------------------------------------- throttling
class Throttle:
    """Decides which updates reach the screen: the first, the last, and ≤ ``max_rate`` per second."""

    def __init__(self, max_rate: float = MAX_RATE, clock: Callable[[], float] = time.perf_counter):
        self.interval = 1.0 / max_rate if max_rate > 0 else 0.0
        self.clock = clock
        self.last: float | None = None

    def __call__(self, stage: int, total: int) -> bool:
        now = self.clock()
        if self.last is None or stage >= total or now - self.last >= self.interval:
            self.last = now
            return True
        return False


# --------------------------------------------------------------------------- the worker's generator
@dataclass
class Frame:
    """One stage as handed to the GUI thread; ``show`` is the throttle's verdict."""

    update: object
    show: bool
    method: str = ""


@dataclass
class Outcome:
    """How a run ended: a Result, or an error message (never an exception)."""

    result: object = None
    error: str | None = None
    prepared: Prepared | None = None
    cache: object = None
    method: str = ""


def friendly(exc: BaseException, what: str = "") -> str:
    """A one-line message: value errors speak for themselves, others get their type named."""
    text = str(exc) or exc.__class__.__name__
    if not isinstance(exc, ValueError):
        text = f"{exc.__class__.__name__}: {text}"
    return f"{what}: {text}" if what else text


def drive(spec, prepare: Callable[[], Prepared] | Prepared, params: dict, reference=None,
          cache=None, start: int = 0, throttle: Throttle | None = None, convention: str = "range"):
    """Worker generator: build the problem, stream the method, yield :class:`Frame` s.

    ``send`` a dict of live parameter changes; it reaches the method at its next stage.
    Returns an :class:`Outcome` (``StopIteration.value``).
    """
    from napari_unrollrecon.engine.metrics import evaluate
    from napari_unrollrecon.engine.stream import stream
    from napari_unrollrecon.methods.base import StageCache

    throttle = throttle or Throttle()
    prepared = None
    try:
        prepared = prepare() if callable(prepare) else prepare
        if cache is None and spec.resumable:
            cache = StageCache()
        gen = stream(spec, prepared.problem, params, reference=None, cache=cache, start=start)
        changes = None
        while True:
            try:
                update = gen.send(changes)
            except StopIteration as stop:
                result = stop.value
                break
            show = throttle(update.stage, update.total)
            if show and reference is not None:
                update.metrics = evaluate(update.image, reference, convention)
            changes = yield Frame(update, show, spec.name)
        if reference is not None:
            result.metrics = evaluate(result.image, reference, convention)
        return Outcome(result=result, prepared=prepared, cache=cache, method=spec.name)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the dock
        return Outcome(error=friendly(exc, spec.title), prepared=prepared, method=spec.name)


def drive_many(specs_params: list, prepare: Callable[[], Prepared], reference=None):
    """Compare: run several (spec, params) on one problem; yields Frames and, per method, an Outcome."""
    prepared = None
    for spec, params in specs_params:
        if prepared is None:
            try:
                prepared = prepare()
            except Exception as exc:  # noqa: BLE001
                yield Outcome(error=friendly(exc, "building the problem"), method=spec.name)
                return
        outcome = yield from drive(spec, prepared, params, reference, throttle=Throttle(max_rate=5))
        yield outcome


# --------------------------------------------------------------------------- live tweaks
def changed_params(old: dict, new: dict) -> set[str]:
    return {k for k, v in new.items() if old.get(k, object()) != v}


def resume_stage(spec, changed: set[str], stages_done: int, has_cache: bool) -> int:
    """Stage a re-run after a parameter change starts from: the earliest affected stage when the
    method can resume from its cache, else 0 (everything)."""
    from napari_unrollrecon.methods.base import earliest_stage

    if not (spec.resumable and has_cache) or not changed:
        return 0
    return max(0, min(earliest_stage(spec.params, changed), stages_done))


def live_changes(spec, old: dict, new: dict) -> tuple[dict, set[str]]:
    """Split a parameter change into what can be sent mid-run and what must wait for a re-run."""
    live = {p.name for p in spec.params if p.live}
    changed = changed_params(old, new)
    return {k: new[k] for k in changed if k in live}, {k for k in changed if k not in live}


def coerce_params(spec, values: dict) -> dict:
    """Validate values against the method's Param declarations (errors name the parameter)."""
    known = {p.name: p for p in spec.params}
    out = {}
    for name, value in values.items():
        if name in known:
            try:
                out[name] = known[name].coerce(value)
            except ValueError as exc:
                raise InputError(str(exc)) from None
    return out


def missing_weights(spec, values: dict) -> str | None:
    """A learned method without a weights file: the message telling the user to load one."""
    if not spec.learned:
        return None
    names = [p.name for p in spec.params if p.kind == "path" or p.name == "weights"]
    if names and not values.get(names[0]):
        return f"{spec.title} has no weights loaded: click 'Load weights…' and choose a .safetensors/.pt file"
    return None


# --------------------------------------------------------------------------- the stage stack
class StageStack:
    """Growing (n, *image_shape) buffer of displayed stages; ``view`` is what the layer shows."""

    def __init__(self, image_shape: tuple, capacity: int = 8):
        self.buf = np.zeros((capacity, *image_shape), np.float32)
        self.stages: list[int] = []
        self.labels: list[str] = []

    def __len__(self):
        return len(self.stages)

    def append(self, image: np.ndarray, stage: int, label: str = "") -> None:
        if tuple(image.shape) != self.buf.shape[1:]:
            raise ValueError(f"stage image shape {image.shape} differs from the stack's {self.buf.shape[1:]}")
        n = len(self.stages)
        if n == self.buf.shape[0]:
            grown = np.zeros((2 * n, *self.buf.shape[1:]), np.float32)
            grown[:n] = self.buf
            self.buf = grown
        self.buf[n] = image
        self.stages.append(int(stage))
        self.labels.append(label)

    def truncate_after(self, stage: int) -> None:
        """Drop frames of stages > ``stage`` (a resumed re-run recomputes them)."""
        keep = sum(1 for s in self.stages if s <= stage)
        self.stages, self.labels = self.stages[:keep], self.labels[:keep]

    @property
    def view(self) -> np.ndarray:
        return self.buf[: max(len(self.stages), 1)]


def display_limits(image: np.ndarray, reference: np.ndarray | None = None) -> tuple[float, float]:
    """Contrast limits set once per run: the reference's range, else the first stage's 99.5th pct."""
    if reference is not None and reference.size and reference.max() > 0:
        return 0.0, float(reference.max())
    src = image
    hi = float(np.percentile(src, 99.5)) if src.size else 1.0
    hi = hi if hi > 0 else float(np.max(src)) or 1.0
    return 0.0, hi


@dataclass
class RunRecord:
    """What a finished run keeps so a parameter tweak can re-run it from a stage."""

    method: str
    params: dict
    prepared: Prepared
    reference: np.ndarray | None
    cache: object
    stages_done: int
    layer_name: str
    settings_key: tuple = ()
    extra: dict = field(default_factory=dict)
