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

import contextlib
import gc
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from napari_unrollrecon import META_KEY  # noqa: F401 - one key for all, re-exported for the dock
from napari_unrollrecon.engine.stream import KEEP_ALL, MAX_RATE, Throttle  # noqa: F401 - the engine's throttle

KINDS = ("image", "kspace", "sinogram")
KIND_LABELS = {"image": "image", "kspace": "k-space", "sinogram": "sinogram"}
MODALITIES = {"mri": "MRI", "dmri": "dynamic MRI", "ct": "CT"}
KEEP_EVERY = 0.5  # longer runs keep a frame at most this often (s); newer stages update the last
MAX_FRAMES = 100  # a stage stack holds at most this many frames: ...
RECENT = 50       # ... every kept frame of the newest RECENT, every other one before (repeatedly)
HOLD_LIMIT_S = 2.0  # longest a held worker waits for the GUI thread before it goes on anyway
#: ``metadata["unrollrecon"]["kind"]`` of the dock's own output layers (never offered as input)
OUTPUT_KINDS = ("reconstruction", "error", "mask-preview", "compare", "reference", "labels", "extra")


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


FRAME_CHOICES = {"auto": "as read", "first": "first axis", "last": "last axis"}


def frames_first(data: np.ndarray, metadata: dict | None, frames: str) -> np.ndarray:
    """A 3-D series with its frame axis first, by the user's choice: ``auto`` keeps what the
    reader decided (MATLAB's H×W×T is moved first), ``first`` / ``last`` name the frame axis of
    the file as stored, undoing the reader's move when it made one."""
    if frames == "auto" or data.ndim != 3:
        return data
    moved = bool((metadata or {}).get(META_KEY, {}).get("file_meta", {}).get("frame_axis"))
    stored = np.moveaxis(data, 0, -1) if moved else data  # the array as the file holds it
    return np.ascontiguousarray(stored if frames == "first" else np.moveaxis(stored, -1, 0))


def frame_note(data: np.ndarray, metadata: dict | None, frames: str) -> str:
    """What the dock assumed about a 3-D input's frame axis, for the status line."""
    if data.ndim != 3:
        return ""
    note = (metadata or {}).get(META_KEY, {}).get("file_meta", {}).get("frame_axis")
    if frames != "auto":
        return f"frame axis: the file's {frames} axis (set in the dock)"
    return note or f"frame axis: the first axis ({data.shape[0]} frames)"


def guess_kind(data, metadata: dict | None) -> str:
    """Input kind recorded by our reader/samples, else "image"."""
    kind = (metadata or {}).get(META_KEY, {}).get("kind")
    return kind if kind in KINDS else "image"


_CT_WORDS = re.compile(r"(?:^|[^a-z])(?:ct|cthead|hu|ct_number|sino\w*)(?:[^a-z]|$)")


def ct_hint(metadata: dict | None) -> str:
    """Why a layer looks like CT data (a DICOM's modality, a CT dataset name or a file path
    naming CT, e.g. ``Test_CT/0001.npy``), or "" when nothing says so."""
    info = (metadata or {}).get(META_KEY, {})
    file_meta = info.get("file_meta", {})
    if str(file_meta.get("modality", "")).upper() == "CT":
        return "the DICOM file's modality is CT"
    for what, text in (("dataset", file_meta.get("key")), ("file path", info.get("file"))):
        parts = str(text or "").lower().replace("\\", "/").split("/")[-3:]
        if any(_CT_WORDS.search(part) for part in parts):
            return f"the {what} '{'/'.join(str(text).split('/')[-2:])}' names CT"
    return ""


def guess_modality(kind: str, ndim: int, metadata: dict | None = None) -> str:
    """Sinograms and 2-D data whose file says CT (:func:`ct_hint`) are CT; 3-D is dynamic MRI."""
    if kind == "sinogram" or (ndim == 2 and kind == "image" and ct_hint(metadata)):
        return "ct"
    return "dmri" if ndim == 3 else "mri"


def reconstructable(data, metadata: dict | None, rgb: bool = False) -> bool:
    """Whether a newly opened layer is something to reconstruct (the dock then selects it): a
    2-D or 3-D numeric single-channel array that is not a sampling mask (our reader's kind
    "mask", or values all 0/1)."""
    info = (metadata or {}).get(META_KEY, {})
    if rgb or info.get("kind") == "mask" or np.ndim(data) not in (2, 3):
        return False
    a = np.asarray(data)
    if a.dtype.kind not in "iufc":
        return False
    return a.size > 4096 * 4096 or not np.all((a == 0) | (a == 1))


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
    if kind == "kspace" and not np.iscomplexobj(data):
        raise InputError("k-space must be complex, but this layer is real-valued (an image, or |k| only): "
                         "set 'data is' to image, or open the complex k-space")
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
    mask_layer: str = ""  # the mask layer used instead of a generated mask, if any

    def describe(self) -> str:
        if self.modality == "ct":
            return f"CT, {self.n_views} views"
        if self.mask_layer:
            return f"{MODALITIES[self.modality]}, mask layer '{self.mask_layer}'"
        return f"{MODALITIES[self.modality]}, {self.mask_kind} mask {self.ratio:.0%}"


def mask_settings(settings: RunSettings, mask_array: np.ndarray | None = None, name: str = "mask layer"):
    """The engine's mask description for the dock's settings (a mask layer, else a generated one)."""
    from napari_unrollrecon.engine.pipeline import MaskSettings

    return MaskSettings(kind=settings.mask_kind, ratio=settings.ratio, seed=settings.seed,
                        center_fraction=settings.center_fraction, array=mask_array, name=name)


def make_mask(settings: RunSettings, shape: tuple, mask_array: np.ndarray | None = None,
              name: str = "mask layer") -> tuple[np.ndarray, dict]:
    """The centred sampling mask for data of ``shape`` ((H, W) or (T, H, W)) and its description,
    exactly as the CLI makes it (a mask layer's layout is detected like a mask file's)."""
    try:
        return mask_settings(settings, mask_array, name).make(tuple(shape))
    except ValueError as exc:
        raise InputError(str(exc)) from None


def layout_text(desc: dict) -> str:
    """What a user's mask was taken to be, for the realised-ratio line ("" for a generated one)."""
    layout = desc.get("mask_layout")
    if not layout:
        return ""
    return " · " + ("uncentred mask (DC at [0,0]): shifted to centre" if layout == "uncentred"
                    else "centred mask (DC at the centre): used as is")


def check_mask(mask, shape: tuple) -> np.ndarray:
    """A user-supplied mask array checked for ``shape`` and returned centred."""
    return make_mask(RunSettings(), shape, mask_array=np.asarray(mask))[0]


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


def build_problem(data: np.ndarray, settings: RunSettings, mask: np.ndarray | None = None,
                  mask_name: str = "mask layer") -> Prepared:
    """Build the engine ``Problem`` through ``engine.pipeline`` - the CLI's builder - from a
    checked input array, the settings and an optional mask layer's array (may be slow for CT)."""
    from napari_unrollrecon.engine import pipeline
    from napari_unrollrecon.engine.device import pick_device

    device = pick_device(settings.device)
    meta = {"modality": settings.modality, "input_kind": settings.kind}
    views = settings.n_views
    if settings.modality == "ct" and settings.kind == "sinogram":
        views = min(views, data.shape[0])  # a full sinogram keeps at most all its views
    ms = None if settings.modality == "ct" else mask_settings(settings, mask, mask_name)
    try:
        problem, desc = pipeline.build_problem(data, settings.kind, settings.modality, ms, views=views,
                                               device=device, noise=settings.noise, seed=settings.seed)
    except ValueError as exc:
        raise InputError(str(exc)) from None
    getattr(problem.operator, "build", lambda: None)()  # a CT projector's slow first use, announced here
    meta.update({("mask_source" if k == "mask" else k): v for k, v in desc.items()})  # "mask" is the array
    if settings.modality == "ct":
        return Prepared(problem, None, meta)
    if mask is None:
        meta.update(mask_kind=settings.mask_kind, ratio=settings.ratio, seed=settings.seed)
    else:
        meta.update(mask_kind="custom")
    used = problem.operator.mask.detach().cpu().numpy()
    meta["realised_ratio"] = float(np.mean(used != 0))
    return Prepared(problem, used, meta)


def auto_reference(data: np.ndarray, kind: str) -> np.ndarray | None:
    """An image input is the ground truth of its own simulation; measured data has none."""
    return np.abs(data).astype(np.float32) if kind == "image" else None


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


class QuietGC:
    """No full garbage-collection sweep over the session's objects while a run streams.

    A generation-2 collection walks every tracked object of napari, Qt and torch: measured 190 ms
    in the middle of a run's first layer build, the longest stall of that run. While any run is on
    screen the objects that existed before it are frozen (``gc.freeze``: O(1), they are simply not
    scanned); young objects are collected as usual, and the frozen ones rejoin the oldest
    generation when the last run ends, so cycles among them are collected between runs.
    """

    def __init__(self):
        self.holders = 0

    def hold(self) -> None:
        self.holders += 1
        if self.holders == 1:
            gc.freeze()

    def release(self) -> None:
        if self.holders:
            self.holders -= 1
            if self.holders == 0:
                gc.unfreeze()


QUIET_GC = QuietGC()  # one per process, as the collector is


class Job:
    """What a worker runs, releasable once it has finished.

    napari's window keeps every worker it made for the whole session (its task list holds
    ``worker.quit``), and a worker keeps its arguments and - when stopped - its suspended
    generator, so each run's problem, mask and reference would stay in memory for as long as
    the viewer lives. The worker gets :meth:`run`; :meth:`release` (after ``finished``) closes
    the generator and drops the arguments.
    """

    def __init__(self, fn: Callable, *args):
        self._fn, self._args, self._gen = fn, args, None
        self._go = threading.Event()
        self._go.set()

    def run(self):
        """``fn``'s generator, passing sent values on; waits while :meth:`held` before each step."""
        self._gen, self._args = self._fn(*self._args), ()
        sent = None
        while True:
            self._go.wait(HOLD_LIMIT_S)  # bounded: a forgotten hold must not hang the worker
            try:  # no local keeps the yielded frame: napari keeps a stopped run's generator
                sent = yield self._gen.send(sent)
            except StopIteration as stop:
                return stop.value

    @contextlib.contextmanager
    def held(self):
        """The worker pauses at its next step while the GUI thread builds napari layers: a layer
        is ~0.05-0.1 s of Python that took 3-5x longer while the worker competed for the GIL."""
        self._go.clear()
        try:
            yield
        finally:
            self._go.set()

    def release(self) -> None:
        gen, self._gen, self._args = self._gen, None, ()
        self._go.set()
        if gen is not None:
            gen.close()


def drive(spec, prepare: Callable[[], Prepared] | Prepared, params: dict, reference=None,
          cache=None, start: int = 0, throttle: Throttle | None = None, convention: str = "range"):
    """Worker generator: build the problem, stream the method, yield :class:`Frame` s (and, while
    the problem is built, a :class:`~napari_unrollrecon.engine.notices.Notice` for each slow step).

    ``send`` a dict of live parameter changes; it reaches the method at its next stage.
    Returns an :class:`Outcome` (``StopIteration.value``).
    """
    from napari_unrollrecon.engine.notices import with_notices
    from napari_unrollrecon.engine.stream import relay, stream
    from napari_unrollrecon.methods.base import StageCache

    throttle = throttle or Throttle()
    prepared = None
    try:
        prepared = (yield from with_notices(prepare)) if callable(prepare) else prepare
        if cache is None and spec.resumable:
            cache = StageCache()
        gen = stream(spec, prepared.problem, params, reference=reference, convention=convention, cache=cache,
                     start=start, throttle=throttle)
        # shown updates are materialised here, in the worker: the GUI thread must not run FFTs
        result = yield from relay(gen, lambda u: Frame(u.materialise() if u.show else u, u.show, spec.name))
        return Outcome(result=result, prepared=prepared, cache=cache, method=spec.name)
    except Exception as exc:  # noqa: BLE001 - every failure becomes a message in the dock
        return Outcome(error=friendly(exc, spec.title), prepared=prepared, method=spec.name)


def drive_many(specs_params: list, prepare: Callable[[], Prepared], reference=None):
    """Compare: run several (spec, params) on one problem; yields Frames and, per method, an Outcome."""
    from napari_unrollrecon.engine.notices import with_notices

    prepared = None
    for spec, params in specs_params:
        if prepared is None:
            try:
                prepared = yield from with_notices(prepare)
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


def bundled_weights(spec, modality: str | None = None, param=None) -> list:
    """Weights files shipped with the package for a learned method (empty for the others) - for
    one ``path`` parameter when the method loads several networks (``Param.weights``); with
    ``modality``, those trained for it (a model card naming no modality fits every modality)."""
    if not getattr(spec, "learned", False):
        return []
    try:
        from napari_unrollrecon.methods.learned import bundled, read_card
    except ImportError:  # pragma: no cover - the learned module is part of the package
        return []
    try:
        files = list(bundled(_weights_kind(spec, param)))
        return [p for p in files if modality is None
                or read_card(p).get("config", {}).get("modality", modality) == modality]
    except (OSError, ValueError):
        return []


def bundled_text(files: list) -> str:
    """'bundled X' for the default; with one model per mask family (their cards' ``mask_family``),
    which model each family runs (the method picks by the mask)."""
    from napari_unrollrecon.methods.learned import WeightsError, read_card

    if not files:
        return ""
    try:
        configs = [read_card(p).get("config", {}) for p in files]
    except (WeightsError, OSError):  # a card that cannot be read: say the file, the run will say why
        configs = []
    families = [c.get("mask_family") for c in configs]
    if len(files) > 1 and all(families) and len(set(families)) == len(files):
        return "bundled, one per mask family: " + ", ".join(f"{f} → {p.stem}" for f, p in zip(families, files))
    ratios = [tuple(c.get("ratios") or ()) for c in configs]
    if len(files) > 1 and all(ratios) and len(set(ratios)) == len(files):
        return "bundled, the one trained nearest the sampling ratio: " + ", ".join(
            f"{_ratio_span(r)} → {p.stem}" for r, p in zip(ratios, files))
    return f"bundled {files[0].name}"


def _ratio_span(ratios) -> str:
    lo, hi = 100 * min(ratios), 100 * max(ratios)
    return f"{lo:g} %" if lo == hi else f"{lo:g}–{hi:g} %"


def _weights_kind(spec, param=None) -> str:
    """The model-card method a path parameter loads: ``Param.weights``, else the method's name."""
    if param is None:
        param = next((p for p in spec.params if p.kind == "path"), None)
    return (getattr(param, "weights", "") if param is not None else "") or spec.name


def path_hint(spec, param, modality: str | None = None) -> str:
    """Placeholder of a ``path`` control: what an empty value means for this method."""
    files = bundled_weights(spec, modality, param)
    if files:
        return f"empty: bundled {files[0].name}"
    return f"no {param.label or param.name} loaded" + (" (required)" if spec.learned else "")


def missing_weights(spec, values: dict, modality: str | None = None) -> str | None:
    """A learned method whose ``path`` parameter (its weights) is empty and that ships none (for
    ``modality``): the message telling the user to load a file. Declared by ``Param(kind="path")``."""
    if not getattr(spec, "learned", False):
        return None
    from napari_unrollrecon.methods.learned import overridden

    for p in spec.params:
        if p.kind != "path" or values.get(p.name) or overridden(_weights_kind(spec, p)):
            continue
        if not bundled_weights(spec, modality, p):
            what = p.label or p.name
            where = f" for {MODALITIES.get(modality, modality)}" if modality and bundled_weights(spec, None, p) else ""
            return (f"{spec.title} has no {what} loaded and none is bundled{where}: click 'Load {what}…' "
                    "and choose a .safetensors file (with its .json model card beside it)")
    return None


class ParamEdits:
    """Parameter values the user edited, per method.

    A parameter with a modality-specific default (``Param.by_modality``) is remembered per
    modality, so switching modality shows that modality's default or the user's earlier edit
    for it; other edits (iterations, wavelet...) carry over between modalities.
    """

    def __init__(self):
        self._edits: dict[tuple, object] = {}

    @staticmethod
    def _key(spec, name: str, modality: str | None) -> tuple:
        p = next((p for p in spec.params if p.name == name), None)
        return (spec.name, name, modality if p is not None and p.by_modality else None)

    def record(self, spec, modality: str | None, name: str, value) -> None:
        self._edits[self._key(spec, name, modality)] = value

    def edited(self, spec, modality: str | None) -> dict:
        out = {}
        for p in spec.params:
            key = self._key(spec, p.name, modality)
            if key in self._edits:
                out[p.name] = self._edits[key]
        return out

    def forget(self, spec, modality: str | None) -> None:
        """Back to the defaults: drop the edits of ``spec`` that apply to ``modality``."""
        for p in spec.params:
            self._edits.pop(self._key(spec, p.name, modality), None)

    def values(self, spec, modality: str | None) -> dict:
        """The modality's defaults overlaid with the user's edits."""
        return {**spec.defaults(modality), **self.edited(spec, modality)}


# --------------------------------------------------------------------------- the stage stack
class StageStack:
    """Growing (n, *image_shape) buffer of the stages a run keeps; ``view`` is what the layer shows.

    A run of at most ``keep_all`` stages keeps every stage it is given. A longer run keeps a new
    frame at most every ``keep_every`` seconds; stages in between overwrite the newest frame, so
    the screen still shows each new stage but the layer (and the napari slider) grows at most
    twice a second (growing re-lays out the dims slider; overwriting only re-slices one layer).
    The stack is bounded: when it holds ``max_frames`` frames, the frames older than the newest
    ``recent`` are thinned to every other one (the first stage always stays), so a 1000-step
    sampler keeps its last stages in full and a thinned trajectory before them (``thinned``;
    ``last_kept`` lists the frames kept, for stacks that mirror this one).
    Frame ``i`` (the slider index) holds stage ``stages[i]``; ``caption(i)`` states the mapping.
    """

    def __init__(self, image_shape: tuple, capacity: int = 8, keep_all: int = KEEP_ALL,
                 keep_every: float = KEEP_EVERY, clock: Callable[[], float] = time.perf_counter,
                 max_frames: int = MAX_FRAMES, recent: int = RECENT):
        self.buf = np.zeros((max(int(capacity), 2), *image_shape), np.float32)  # ≥ 2: see ``display``
        self.stages: list[int] = []
        self.labels: list[str] = []
        self.metrics: list[dict] = []
        self.total = 0
        self.keep_all, self.keep_every, self.clock = keep_all, keep_every, clock
        self.max_frames, self.recent = max(int(max_frames), int(recent) + 2), int(recent)
        self.thinned, self.last_kept = False, None
        self._kept_at: float | None = None

    def __len__(self):
        return len(self.stages)

    @property
    def image_shape(self) -> tuple:
        return tuple(self.buf.shape[1:])

    def add(self, image: np.ndarray, stage: int, label: str = "", metrics: dict | None = None,
            total: int | None = None) -> bool:
        """Keep ``image`` as a new frame or overwrite the newest (see the class docstring).
        Returns True when a frame was added."""
        if total is not None:
            self.total = int(total)
        self.last_kept = None  # (a thinning is reported once: mirrors must not thin again)
        now = self.clock()
        keep = (len(self.stages) < 2 or (self.total or 0) <= self.keep_all or self._kept_at is None
                or now - self._kept_at >= self.keep_every)
        if not keep:
            i = len(self.stages) - 1
            self._check(image)
            self.buf[i] = image
            self.stages[i], self.labels[i], self.metrics[i] = int(stage), label, dict(metrics or {})
            return False
        self.append(image, stage, label, metrics)
        self._kept_at = now
        return True

    def _check(self, image) -> None:
        if tuple(image.shape) != self.buf.shape[1:]:
            raise ValueError(f"stage image shape {image.shape} differs from the stack's {self.buf.shape[1:]}")

    def append(self, image: np.ndarray, stage: int, label: str = "", metrics: dict | None = None,
               total: int | None = None) -> None:
        self._check(image)
        self.last_kept = self._thin() if len(self.stages) >= self.max_frames else None
        n = len(self.stages)
        if n == self.buf.shape[0]:
            grown = np.zeros((2 * n, *self.buf.shape[1:]), np.float32)
            grown[:n] = self.buf
            self.buf = grown
        self.buf[n] = image
        self.stages.append(int(stage))
        self.labels.append(label)
        self.metrics.append(dict(metrics or {}))
        if total is not None:
            self.total = int(total)

    def _thin(self) -> list[int]:
        n = len(self.stages)
        old = n - self.recent
        kept = list(range(0, old, 2)) + list(range(old, n))
        self.keep_only(kept)
        self.thinned = True
        return kept

    def keep_only(self, frames: list[int]) -> None:
        """Keep only these frames (in order); mirrors another stack's thinning."""
        frames = [i for i in frames if i < len(self.stages)]
        self.buf[: len(frames)] = self.buf[frames]
        self.stages = [self.stages[i] for i in frames]
        self.labels = [self.labels[i] for i in frames]
        self.metrics = [self.metrics[i] for i in frames]

    def truncate_after(self, stage: int) -> None:
        """Drop frames of stages > ``stage`` (a resumed re-run recomputes them)."""
        keep = sum(1 for s in self.stages if s <= stage)
        del self.stages[keep:], self.labels[keep:], self.metrics[keep:]

    @property
    def view(self) -> np.ndarray:
        return self.buf[: max(len(self.stages), 1)]

    @property
    def display(self) -> np.ndarray:
        """What the layer shows: ``view``, but two frames (the first repeated) while a run of
        several stages holds one. napari hides a slider of one step, so without this the stage
        slider vanished at each run's first stage and came back at its second: two canvas resizes,
        each a full repaint, in the Run click's event-loop turn (measured 40-60 ms of its stall)."""
        n = len(self.stages)
        if n == 1 and self.total > 1:
            self.buf[1] = self.buf[0]
            return self.buf[:2]
        return self.view

    def _clip(self, index: int) -> int:
        return min(max(int(index), 0), len(self.stages) - 1)

    def stage_text(self, index: int) -> str:
        """``"stage k/N"`` of frame ``index`` (clipped to the frames held)."""
        if not self.stages:
            return "no stage yet"
        text = f"stage {self.stages[self._clip(index)]}/{self.total or self.stages[-1]}"
        if self.thinned:
            text += f" (kept {len(self.stages)} frames: the last {self.recent}, thinned before)"
        return text

    def score_text(self, index: int) -> str:
        """``"PSNR … dB · SSIM …"`` of frame ``index``, or "" without a reference."""
        if not self.stages:
            return ""
        m = self.metrics[self._clip(index)]
        parts = [f"PSNR {m['psnr']:.2f} dB"] if "psnr" in m else []
        parts += [f"SSIM {m['ssim']:.3f}"] if "ssim" in m else []
        return " · ".join(parts)

    def caption(self, index: int) -> str:
        """``"stage k/N · PSNR … dB · SSIM …"`` for frame ``index``."""
        return " · ".join(t for t in (self.stage_text(index), self.score_text(index)) if t)


class ErrorStack:
    """|stage − reference| per frame of a :class:`StageStack`, computed only when looked at."""

    def __init__(self, reference: np.ndarray):
        self.reference = reference
        self.buf = np.zeros((0, *reference.shape), np.float32)
        self.done = 0

    def sync(self, stack: StageStack) -> np.ndarray:
        """Bring the error frames up to date with ``stack`` and return them."""
        n = len(stack)
        if self.buf.shape[0] < stack.buf.shape[0]:
            grown = np.zeros(stack.buf.shape, np.float32)
            grown[: self.done] = self.buf[: self.done]
            self.buf = grown
        self.done = min(self.done, max(n - 1, 0))  # the newest frame may have been overwritten
        if n > self.done:
            np.subtract(stack.buf[self.done:n], self.reference, out=self.buf[self.done:n])
            np.abs(self.buf[self.done:n], out=self.buf[self.done:n])
            self.done = n
        return self.buf[: max(n, 1)]

    def invalidate_after(self, n_frames: int) -> None:
        self.done = min(self.done, n_frames)


def image_shape_for(data: np.ndarray, settings: RunSettings) -> tuple:
    """Shape of the reconstruction before the problem is built (so layers can be made early)."""
    if settings.modality == "ct" and settings.kind == "sinogram":
        from napari_unrollrecon.physics.ct import RadonOperator

        n = RadonOperator.image_size_for(data.shape[-1])
        return (n, n)
    return tuple(data.shape)


def panel_layout(n: int, panel_hw: tuple, canvas_hw: tuple = (800, 800), label_px: float = 44.0,
                 margin: float = 0.02, reserve_px: float = 48.0) -> tuple[list[tuple[float, float]], float]:
    """Side-by-side placement of ``n`` equal panels on a canvas: the grid (columns) that shows
    them largest, each with a strip above it for its label (``label_px`` high on screen) and
    ``reserve_px`` left free under the panels (for the canvas text overlay).

    Returns ``(offsets, label_h)``: the (y, x) world offset of each panel's top-left corner
    (panel i is at row i // cols, column i % cols) and the label strip height in world units.
    The first panel sits at the origin and columns abut, so the user's layers underneath (also
    at the origin) stay covered; the first row's labels are above it, at negative y.
    """
    h, w = float(panel_hw[0]), float(panel_hw[1])
    ch, cw = (max(float(v), 1.0) * (1 - 2 * margin) for v in canvas_hw)
    ch = max(ch - reserve_px, 0.2 * ch)
    best = None
    for cols in range(1, max(n, 1) + 1):
        rows = -(-max(n, 1) // cols)
        label_h = 0.0
        for _ in range(3):  # the strip is label_px on screen: depends on the zoom it yields
            zoom = min(cw / (cols * w), ch / (rows * (h + label_h)))
            label_h = label_px / zoom
        if best is None or zoom > best[0] * 1.0001:
            best = (zoom, cols, label_h)
    _, cols, label_h = best
    offsets = [((i // cols) * (h + label_h), (i % cols) * w) for i in range(n)]
    return offsets, label_h


def fit_labels(captions: list[str], panel_px: float, char_px: float = 9.0) -> list[str]:
    """Panel captions that fit a panel ``panel_px`` wide on screen (``char_px`` per character of
    the 10-pt label font): long lines break at ' · ', what is still too long is cut with '…', so
    the labels of neighbouring panels never run into each other."""
    width = max(int(panel_px / char_px) - 1, 6)
    lines = ([line if len(line) <= width else line[: width - 1] + "…"
              for line in wrap(text, width).splitlines()] for text in captions)
    return ["\n".join(line.strip() for line in text) for text in lines]


def wrap(text: str, width: int = 72) -> str:
    """Break long overlay lines at ' · ' separators so they fit a narrow canvas."""
    out = []
    for line in text.splitlines():
        while len(line) > width and " · " in line[:width]:
            cut = line[:width].rindex(" · ")
            out.append(line[:cut])
            line = "  " + line[cut + 3:]
        out.append(line)
    return "\n".join(out)


def display_limits(image: np.ndarray, reference: np.ndarray | None = None) -> tuple[float, float]:
    """Contrast limits set once per run: the reference's range, else the first stage's 99.5th pct."""
    if reference is not None and reference.size and reference.max() > 0:
        return 0.0, float(reference.max())
    src = image
    hi = float(np.percentile(src, 99.5)) if src.size else 1.0
    hi = hi if hi > 0 else float(np.max(src)) or 1.0
    return 0.0, hi


@dataclass
class RunState:
    """The dock's state of one single-method run (running, or the last one finished)."""

    spec: object
    values: dict
    reference: np.ndarray | None
    source: str
    settings: RunSettings
    shape: tuple
    ref_name: str = ""
    mask: np.ndarray | None = None
    start: int = 0
    key: tuple = ()  # the input and settings it ran on (a later tweak must match them)
    prepare: object = None
    limits_key: tuple = ()  # what the layer's contrast limits were set for
    sent: dict = field(default_factory=dict)  # live changes already sent to the worker
    t0: float = 0.0
    first_frame: float | None = None  # seconds to the first stage on screen
    last: object = None  # the newest Update
    shown: object = None  # the newest Update on screen
    view: object = None  # its ResultView
    occluded: tuple = ()  # names of the user's layers hidden under the result while it runs
    swap: bool = False  # a new layer, hidden until the first stage, when it replaces the previous result
    compare = False


@dataclass
class CompareState:
    """The dock's state of one Compare (several methods on one input, side by side)."""

    spec: object  # the first method's (progress texts)
    titles: dict  # method -> title
    values: dict  # method -> parameter values
    reference: np.ndarray | None
    source: str
    settings: RunSettings
    shape: tuple
    ref_name: str
    mask: np.ndarray | None
    slots: list  # (key, caption) per panel
    tag: int  # the Compare's number (its layers carry it)
    layers: list = field(default_factory=list)  # methods whose panels exist
    done: int = 0
    t0: float = 0.0
    first_frame: float | None = None
    last: object = None
    shown: object = None
    view: object = None
    compare = True


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
    run: RunState | None = None  # the run's state (its view, source, settings, mask, shape)
