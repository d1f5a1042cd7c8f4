"""The protocol every reconstruction method follows.

A method is a :class:`MethodSpec`: a name, the modalities it handles, a declaration of its
tunable :class:`Param` s, and ``run`` - a *generator function*::

    gen = spec.run(problem, params, cache=None, start=0)
    update = next(gen)                 # first Update
    update = gen.send({"lam": 0.02})   # live change, takes effect at the next stage
    ...                                # StopIteration.value is the final Result

Each ``yield`` hands out one :class:`Update` (stage index and total, the current magnitude image
as float32 numpy, optional extras such as a threshold map, the data-consistency residual); the
value sent back is ``None`` or a dict of parameter changes. Metrics against a reference are added
by the engine (``engine.stream``), so a method never sees the ground truth.

``cache``/``start`` let a finished run be replayed from stage ``start`` after a parameter change:
a method that supports it (``resumable=True``) stores the input of each stage ℓ in ``cache[ℓ]``
(a :class:`StageCache`) and, given ``start = ℓ > 1``, takes ``cache[ℓ]`` as its state and
recomputes stages ℓ..total only; stages are 1-based like ``Update.stage`` and ``Param.stage``, and
``start`` 0 or 1 means from the beginning. Non-resumable methods ignore both.

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
                value = value if isinstance(value, bool) else str(value).lower() in ("1", "true", "yes", "on")
            elif self.kind == "choice":
                if value not in self.choices:
                    raise ValueError
            elif self.kind == "path":
                value = None if value in (None, "") else str(value)
        except (TypeError, ValueError):
            allowed = f"one of {list(self.choices)}" if self.kind == "choice" else f"a {self.kind}"
            raise ValueError(f"parameter {self.name!r} must be {allowed}, got {value!r}") from None
        if self.kind in ("float", "int"):
            if not np.isfinite(value):
                raise ValueError(f"parameter {self.name!r} must be finite, got {value!r}")
            if (self.low is not None and value < self.low) or (self.high is not None and value > self.high):
                raise ValueError(
                    f"parameter {self.name!r}={value} is outside its range [{self.low}, {self.high}]"
                )
        return value


class LiveParams(dict):
    """The current parameter values of a run; ``apply`` merges changes sent into the generator."""

    def __init__(self, specs: tuple[Param, ...], values: dict | None = None, modality: str | None = None):
        self.specs = {p.name: p for p in specs}
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
@dataclass
class Update:
    """One step of a reconstruction, as streamed to the GUI / CLI / benchmarks."""

    stage: int  # 1-based index of this stage or iteration
    total: int  # number of stages (may be an estimate for adaptive methods)
    image: np.ndarray  # float32 magnitude, (H, W) or (T, H, W)
    label: str = ""
    residual: float | None = None
    extras: dict[str, np.ndarray] = field(default_factory=dict)
    info: dict[str, float] = field(default_factory=dict)  # scalars, e.g. learned step sizes
    metrics: dict[str, float] = field(default_factory=dict)  # filled by the engine
    params: dict = field(default_factory=dict)
    elapsed: float = 0.0  # seconds since the run started


@dataclass
class Result:
    """Returned by the generator when it ends (``StopIteration.value``)."""

    image: np.ndarray  # float32 magnitude of the final estimate
    complex_image: np.ndarray | None
    method: str
    params: dict
    stages: int
    seconds: float
    metrics: dict[str, float] = field(default_factory=dict)
    meta: dict = field(default_factory=dict)


class StageCache(dict):
    """Per-stage state kept by a run so a later run can resume from any stage."""


def to_numpy_magnitude(x: torch.Tensor) -> np.ndarray:
    """Detach, move to CPU and take the magnitude - the only form handed to the GUI thread."""
    x = x.detach()
    x = x.abs() if torch.is_complex(x) else x
    return x.to(torch.float32).cpu().numpy()


class UpdateMaker:
    """Builds :class:`Update` objects with timing and residual for one run."""

    def __init__(self, problem: Problem, params: LiveParams, total: int):
        self.problem, self.params, self.total = problem, params, total
        self.t0 = time.perf_counter()

    def __call__(self, stage: int, x: torch.Tensor, label: str = "", residual: bool = True, **kw) -> Update:
        return Update(
            stage=stage,
            total=self.total,
            image=to_numpy_magnitude(x),
            label=label or f"{stage}/{self.total}",
            residual=self.problem.residual(x) if residual else None,
            params=dict(self.params),
            elapsed=time.perf_counter() - self.t0,
            **kw,
        )

    def result(self, name: str, x: torch.Tensor, stages: int, meta: dict | None = None) -> Result:
        xc = x.detach().cpu()
        return Result(
            image=to_numpy_magnitude(x),
            complex_image=xc.numpy() if torch.is_complex(xc) else None,
            method=name,
            params=dict(self.params),
            stages=stages,
            seconds=time.perf_counter() - self.t0,
            meta=dict(meta or {}),
        )


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

    def defaults(self, modality: str | None = None) -> dict:
        return {p.name: p.default_for(modality) for p in self.params}

    def start(self, problem: Problem, params: dict | None = None, cache: StageCache | None = None, start: int = 0):
        """Validate and start the generator."""
        if problem.modality not in self.modalities:
            raise ValueError(
                f"method {self.name!r} handles {', '.join(self.modalities)} data, not {problem.modality!r}"
            )
        live = LiveParams(self.params, params, problem.modality)
        return self.run(problem, live, cache=cache, start=start)
