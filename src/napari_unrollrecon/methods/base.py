"""The protocol every reconstruction method follows.

A method is a :class:`MethodSpec`: a name, the modalities it handles, a declaration of its
tunable :class:`Param` s, and ``run`` - a *generator function*, started through ``spec.start``::

    gen = spec.start(problem, params, cache=None, start=0)
    update = next(gen)                 # first Update
    update = gen.send({"lam": 0.02})   # live change, takes effect at the next stage
    ...                                # StopIteration.value is the final Result

Each ``yield`` hands out one :class:`Update` (stage index and total, the current estimate as a
detached tensor, optional extras such as a threshold map); the image, residual and extras are
materialised lazily, only when a consumer reads them. Changes sent in are merged into the run's
:class:`LiveParams` by ``spec.start``'s wrapper before the method resumes, so a method only
reads ``params`` after each yield. Metrics against a reference are added by the engine
(``engine.stream``), so a method never sees the ground truth.

Stochastic methods declare :data:`STOCHASTIC_PARAMS` (``samples`` K and ``seed``), draw every
random number from :func:`noise_generator`, and yield estimates with a leading samples axis:
``Update.image`` is the sample mean, ``Update.extras["std"]`` the pixel-wise spread, and
``Result.samples`` keeps the K samples.

``cache``/``start`` let a finished run be replayed from stage ``start`` after a parameter change:
a resumable method (``resumable=True``) puts the state after each stage into a
:class:`StageCache` (bounded by a memory budget; samplers include their generator state, so a
replay draws the same noise) and, given ``start = ℓ > 1``, resumes from the latest kept state at
or before stage ℓ − 1 (:func:`resume_point`); stages are 1-based like ``Update.stage`` and
``Param.stage``, and ``start`` 0 or 1 means from the beginning. Others ignore both.

Parameter kinds: ``float``, ``int``, ``bool``, ``choice`` and ``path`` (a file, e.g. the
``weights`` of a learned method, passed through unchanged; the dock shows a file picker).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Generator

import numpy as np
import torch


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Param:
    """A tunable parameter: enough for a GUI to build a control and for a CLI to parse it."""

    name: str
    default: Any
    kind: str = "float"  # "float" | "int" | "bool" | "choice" | "path"
    low: float | None = None
    high: float | None = None
    choices: tuple = ()
    live: bool = False  # may change while the generator runs
    log: bool = False  # a slider should be logarithmic
    relative: bool = False  # multiplied by the data scale (Problem.scale) inside the method
    stage: int | None = None  # first stage a change affects (None: all stages, i.e. stage 0)
    label: str = ""
    help: str = ""
    by_modality: tuple = ()  # ((modality, default), ...) where a modality needs another default
    modalities: tuple = ()  # the modalities it acts in (empty: all of the method's); the dock hides it elsewhere
    weights: str = ""  # a path parameter's weights kind (a model card's "method"; empty: the method's own name)

    def applies_to(self, modality: str | None) -> bool:
        """Whether the parameter does anything for ``modality`` (None: any)."""
        return not self.modalities or modality is None or modality in self.modalities

    def default_for(self, modality: str | None = None):
        """The default for ``modality`` (e.g. CT wants a smaller relative weight than MRI)."""
        return dict(self.by_modality).get(modality, self.default)

    def coerce(self, value):
        """Validate and convert ``value``; the error names the parameter and the allowed range."""
        try:
            if self.kind == "float":
                value = float(value)
            elif self.kind == "int":
                value = int(value)
            elif self.kind == "bool":
                value = value if isinstance(value, bool) else _BOOLS[str(value).strip().lower()]
            elif self.kind == "choice":
                if value not in self.choices:
                    raise ValueError
            elif self.kind == "path":
                value = None if value in (None, "") else str(value)
        except (TypeError, ValueError, KeyError):
            allowed = {"choice": f"one of {list(self.choices)}", "bool": "true or false (also 1/0, yes/no, on/off)"}.get(
                self.kind, f"a {self.kind}")
            raise ValueError(f"parameter {self.name!r} must be {allowed}, got {value!r}") from None
        if self.kind in ("float", "int"):
            if not np.isfinite(value):
                raise ValueError(f"parameter {self.name!r} must be finite, got {value!r}")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ValueError(
                    f"parameter {self.name!r}={value} is outside its range [{self.low}, {self.high}]"
                )
        return value


_BOOLS = {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False, "no": False, "off": False}


def scale_param(name: str, label: str, help: str) -> Param:
    """A live multiplier on a learned quantity of every stage (1 = as trained, 0 … 10)."""
    return Param(name, 1.0, low=0.0, high=10.0, live=True, label=label, help=help)


class LiveParams(dict):
    """The current parameter values of a run; ``apply`` merges changes sent into the generator."""

    def __init__(self, specs: tuple[Param, ...], values: dict | None = None, modality: str | None = None):
        self.specs = {p.name: p for p in specs}
        self.last_changed: set[str] = set()
        super().__init__({p.name: p.default_for(modality) for p in specs})
        for name, value in (values or {}).items():
            self[name] = self._spec(name).coerce(value)

    def _spec(self, name):
        try:
            return self.specs[name]
        except KeyError:
            raise ValueError(f"unknown parameter {name!r}; known: {sorted(self.specs)}") from None

    def apply(self, changes: dict | None) -> set[str]:
        """Merge ``changes``; only ``live`` parameters may change mid-run. Returns changed names."""
        changed = set()
        for name, value in (changes or {}).items():
            spec = self._spec(name)
            if not spec.live:
                raise ValueError(f"parameter {name!r} cannot change during a run; start a new run")
            value = spec.coerce(value)
            if value != self.get(name):
                self[name] = value
                changed.add(name)
        return changed


def earliest_stage(specs: tuple[Param, ...], names) -> int:
    """First stage affected by a change of the parameters ``names`` (0 = everything)."""
    by_name = {p.name: p for p in specs}
    stages = [by_name[n].stage or 0 for n in names if n in by_name]
    return min(stages) if stages else 0


# --------------------------------------------------------------------------- problem
@dataclass
class Problem:
    """What a method reconstructs from: an operator and measurements, no ground truth.

    ``modality`` is "mri", "dmri" (2D+time) or "ct". ``operator`` exposes ``A``, ``AH`` and
    ``norm()``; ``y`` are the measurements on the operator's device. ``scale`` is a typical
    image intensity (max of the adjoint/FBP image) so that method parameters can be stated
    relative to the data. ``meta`` carries descriptive facts (mask type, ratio, views...).
    """

    modality: str
    operator: Any
    y: torch.Tensor
    scale: float = 1.0
    image_shape: tuple = ()
    meta: dict = field(default_factory=dict)

    @property
    def device(self):
        return self.y.device

    def residual(self, x: torch.Tensor) -> float:
        """Relative data-consistency residual ``||A x - y|| / ||y||``."""
        r = self.operator.A(x) - self.y
        return float(torch.linalg.vector_norm(r) / torch.linalg.vector_norm(self.y).clamp_min(1e-12))


# --------------------------------------------------------------------------- updates
def to_numpy_magnitude(x: torch.Tensor) -> np.ndarray:
    """Detach, move to CPU and take the magnitude - the only form handed to the GUI thread."""
    x = x.detach()
    x = x.abs() if torch.is_complex(x) else x
    return x.to(torch.float32).cpu().numpy()


def _as_numpy(v) -> np.ndarray:
    return to_numpy_magnitude(v) if isinstance(v, torch.Tensor) else np.asarray(v)


class Update:
    """One step of a reconstruction, as streamed to the GUI / CLI / benchmarks.

    Lazy: a method hands over its current estimate as a detached tensor (``estimate``; with a
    leading samples axis when ``samples`` > 0). The magnitude ``image`` (the sample mean), the
    residual and tensor-valued ``extras`` (for K ≥ 2 samples the pixel-wise ``std``) are
    computed the first time somebody reads them, so a 1000-step sampler pays for conversions only
    at the rate a consumer looks. ``Update.materialised`` counts the images computed (tests).
    """

    materialised = 0

    def __init__(self, stage: int, total: int, image: np.ndarray | None = None, *, estimate=None,
                 samples: int = 0, label: str = "", residual: float | None = None, residual_fn=None,
                 extras: dict | None = None, info: dict | None = None, metrics: dict | None = None,
                 params: dict | None = None, elapsed: float = 0.0):
        if image is None and estimate is None:
            raise ValueError("an Update needs an image or an estimate")
        self.stage, self.total, self.label = int(stage), int(total), label
        self.estimate = estimate.detach() if isinstance(estimate, torch.Tensor) else estimate
        self.samples = int(samples)
        self._image = None if image is None else np.asarray(image)
        self._residual, self._residual_fn = residual, residual_fn
        self._extras = dict(extras or {})
        self.info = dict(info or {})
        self.metrics = dict(metrics or {})
        self.params = dict(params or {})
        self.elapsed = elapsed
        self.show = True  # the engine's throttle verdict: a consumer may skip updates with show=False

    def mean_estimate(self) -> torch.Tensor:
        e = self.estimate
        return e.mean(0) if self.samples else e

    @property
    def image(self) -> np.ndarray:
        """float32 magnitude of the estimate (of the sample mean), (H, W) or (T, H, W)."""
        if self._image is None:
            self._image = to_numpy_magnitude(self.mean_estimate())
            Update.materialised += 1
        return self._image

    @property
    def residual(self) -> float | None:
        if self._residual is None and self._residual_fn is not None:
            self._residual = float(self._residual_fn(self.mean_estimate()))
            self._residual_fn = None
        return self._residual

    @property
    def extras(self) -> dict[str, np.ndarray]:
        """Extra maps (threshold maps, corrections, ``std`` over samples) as numpy arrays."""
        if self.samples > 1 and "std" not in self._extras:
            self._extras["std"] = std_over_samples(self.estimate)
        for k, v in self._extras.items():
            if not isinstance(v, np.ndarray):
                self._extras[k] = _as_numpy(v)
        return self._extras

    @extras.setter
    def extras(self, value: dict):
        self._extras = dict(value or {})

    def materialise(self) -> "Update":
        """Compute the image, residual and extra maps now, in the calling thread (the dock's worker
        does this for the updates it shows, so the GUI thread only copies arrays)."""
        _ = self.image, self.residual, self.extras
        return self

    def __repr__(self):
        return f"Update(stage={self.stage}/{self.total}, label={self.label!r}, samples={self.samples})"


def std_over_samples(samples: torch.Tensor) -> torch.Tensor:
    """Pixel-wise standard deviation of the magnitudes over the leading samples axis."""
    mags = samples.abs() if torch.is_complex(samples) else samples
    return mags.float().std(0, correction=1 if samples.shape[0] > 1 else 0)


@dataclass
class Result:
    """Returned by the generator when it ends (``StopIteration.value``)."""

    image: np.ndarray  # float32 magnitude of the final estimate (the sample mean)
    complex_image: np.ndarray | None
    method: str
    params: dict
    stages: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)
    samples: np.ndarray | None = None  # (K, ...) posterior samples (complex or real), stochastic methods
    std: np.ndarray | None = None  # pixel-wise std of the sample magnitudes (K ≥ 2)


#: Default memory budget of a stage cache (MB); $UNROLLRECON_CACHE_MB overrides it.
CACHE_BUDGET_MB = 256


def _state_bytes(state) -> int:
    if isinstance(state, torch.Tensor):
        return state.numel() * state.element_size()
    if isinstance(state, dict):
        return sum(_state_bytes(v) for v in state.values())
    if isinstance(state, (tuple, list)):
        return sum(_state_bytes(v) for v in state)
    return 64


class StageCache:
    """States a run keeps so a later run can resume near any stage, within a memory budget.

    ``put(stage, state)`` stores the state *after* ``stage`` stages (0 = the initial state) under
    the run's ``key``. Kept are stage 0, the newest, and the multiples of ``spacing``; when the
    budget would be exceeded the spacing doubles, so a 1000-step sampler keeps evenly thinned
    checkpoints within the budget. ``nearest(stage)`` answers the latest kept stage ≤ ``stage`` with
    its state. A state is any nest of tensors (and torch.Generator states, which are tensors).
    """

    def __init__(self, budget_mb: float | None = None):
        import os

        mb = budget_mb if budget_mb is not None else float(os.environ.get("UNROLLRECON_CACHE_MB", CACHE_BUDGET_MB))
        self.budget = int(mb * 2**20)
        self.key = None
        self.spacing = 1
        self.resumed_from = 1  # 1-based first stage the latest run recomputed (set by resume_point)
        self._states: dict[int, object] = {}
        self._bytes: dict[int, int] = {}

    def reset(self, key) -> None:
        self.key, self.spacing = key, 1
        self._states.clear()
        self._bytes.clear()

    def matches(self, key) -> bool:
        return self.key == key and bool(self._states)

    @property
    def nbytes(self) -> int:
        return sum(self._bytes.values())

    @property
    def stages(self) -> list[int]:
        return sorted(self._states)

    def put(self, stage: int, state) -> None:
        """Keep ``state`` as the state after ``stage`` stages; a stage below the newest starts a new
        trajectory from there (a resumed run), so the kept stages after it are dropped."""
        stage = int(stage)
        for s in [s for s in self._states if s > stage]:
            del self._states[s], self._bytes[s]
        self._states[stage], self._bytes[stage] = state, _state_bytes(state)
        self._prune(stage)
        while self.nbytes > self.budget and len(self._states) > 2:
            self.spacing *= 2
            self._prune(stage)

    def _prune(self, newest: int) -> None:
        for s in list(self._states):
            if s != 0 and s != newest and s % self.spacing:
                del self._states[s], self._bytes[s]

    def nearest(self, stage: int):
        """(kept stage ≤ ``stage``, its state), or None when nothing at or before it is kept."""
        below = [s for s in self._states if s <= stage]
        if not below:
            return None
        s = max(below)
        return s, self._states[s]

    def clear(self) -> None:
        self.reset(None)


def resume_point(cache: StageCache | None, key, start: int, title: str):
    """Where a resumable run starts: (0-based first stage to compute, its input state or None).

    ``start`` is the protocol's 1-based stage to recompute from (0 or 1: from the beginning). The
    cache may hold a checkpoint before ``start - 1`` only; the run then recomputes from there."""
    if int(start) <= 1:
        if cache is not None:
            cache.reset(key)
            cache.resumed_from = 1
        return 0, None
    if cache is None or cache.key != key:
        raise ValueError(f"cannot resume {title} at stage {start}: the cache holds no state for this model and "
                         "data; run again from the start (start=0)")
    hit = cache.nearest(int(start) - 1)
    if hit is None:
        raise ValueError(f"cannot resume {title} at stage {start}: no state kept at or before it; run again "
                         "from the start (start=0)")
    cache.resumed_from = hit[0] + 1
    return hit


class UpdateMaker:
    """Builds :class:`Update` objects with timing and a lazy residual for one run.

    ``samples``: the leading axis of estimates is a samples axis of this length (0 = none)."""

    def __init__(self, problem: Problem, params: LiveParams, total: int, samples: int = 0):
        self.problem, self.params, self.total, self.samples = problem, params, total, samples
        self.t0 = time.perf_counter()

    def __call__(self, stage: int, x: torch.Tensor, label: str = "", residual: bool = True, **kw) -> Update:
        return Update(
            stage=stage,
            total=self.total,
            estimate=x,
            samples=self.samples,
            label=label or f"{stage}/{self.total}",
            residual_fn=self.problem.residual if residual else None,
            params=dict(self.params),
            elapsed=time.perf_counter() - self.t0,
            **kw,
        )

    def result(self, name: str, x: torch.Tensor, stages: int, meta: dict | None = None) -> Result:
        x = x.detach()
        mean = x.mean(0) if self.samples else x
        xc = mean.cpu()
        samples = x.cpu().numpy() if self.samples else None
        return Result(
            image=to_numpy_magnitude(mean),
            complex_image=xc.numpy() if torch.is_complex(xc) else None,
            method=name,
            params=dict(self.params),
            stages=stages,
            seconds=time.perf_counter() - self.t0,
            meta=dict(meta or {}),
            samples=samples,
            std=std_over_samples(x).cpu().numpy() if self.samples > 1 else None,
        )


# --------------------------------------------------------------------------- stochastic methods
SAMPLES_PARAM = Param("samples", 1, kind="int", low=1, high=16384, label="posterior samples K",
                      help="independent samples drawn at once (a batch); the image is their mean, 'std' their spread")
SEED_PARAM = Param("seed", 0, kind="int", low=0, high=2**31 - 1, label="noise seed",
                   help="seed of the sampler's noise: the same seed replays the same run exactly")
STOCHASTIC_PARAMS = (SAMPLES_PARAM, SEED_PARAM)


def noise_generator(params, device) -> torch.Generator:
    """The run's explicit noise source, seeded from the ``seed`` parameter, on ``device``."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(params["seed"]))


RunFn = Callable[..., Generator[Update, "dict | None", Result]]


@dataclass(frozen=True)
class MethodSpec:
    """Declaration of one method: the registry, CLI and dock are built from this."""

    name: str  # CLI name, e.g. "tv"
    title: str  # display name, e.g. "TV (primal-dual)"
    modalities: tuple[str, ...]  # subset of ("mri", "dmri", "ct")
    params: tuple[Param, ...]
    run: RunFn
    learned: bool = False
    resumable: bool = False  # honours cache/start
    description: str = ""
    reference: str = ""  # paper / credit
    memory_per_pixel: float = 0.0  # working-set bytes per image element (0: 128 classical, 768 learned)

    def defaults(self, modality: str | None = None) -> dict:
        return {p.name: p.default_for(modality) for p in self.params}

    def start(self, problem: Problem, params: dict | None = None, cache: StageCache | None = None, start: int = 0):
        """Validate and start the generator; live changes sent to it are applied to its
        :class:`LiveParams` here, once, before the method resumes (methods never call ``apply``)."""
        if problem.modality not in self.modalities:
            raise ValueError(
                f"method {self.name!r} handles {', '.join(self.modalities)} data, not {problem.modality!r}"
            )
        live = LiveParams(self.params, params, problem.modality)
        return with_live_params(self.run(problem, live, cache=cache, start=start), live)


def with_live_params(gen, live: LiveParams):
    """Wrap a method generator: each value sent in is merged into ``live`` (``live.last_changed``
    names what changed) and the method is resumed with ``None``."""
    try:
        item = next(gen)
        while True:
            changes = yield item
            live.last_changed = live.apply(changes)
            item = gen.send(None)
    except StopIteration as stop:
        return stop.value
    finally:
        gen.close()
