"""Weights registry for the CLI, bench and listings: a facade over the one weights layer in
:mod:`napari_unrollrecon.methods.learned` (resolution rules, loading, the model cache), which the
methods' ``ModelStore`` uses too.

:func:`load` takes ``params["weights"]``: an empty value means the method's default bundled
file, a bare name picks a bundled file by its stem, anything else is a path. Every file goes through :func:`napari_unrollrecon.methods.learned.load_model` (safetensors,
model card beside it, architecture and sha256 checked), so a bad file fails with a
:class:`~napari_unrollrecon.methods.learned.WeightsError` that names the problem.

Bundled weights live in ``napari_unrollrecon/weights/`` (shipped in the wheel, kept under
:data:`BUNDLE_LIMIT_MB` in total). A card may set ``"default": true``; otherwise the first bundled
file of the method (sorted by name) is its default.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path

from napari_unrollrecon.engine import registry
from napari_unrollrecon.methods import learned
from napari_unrollrecon.methods.learned import TrainingSpec, WeightsError

BUNDLE_LIMIT_MB = 40.0


@dataclass(frozen=True)
class WeightsEntry:
    """One weights file and its model card."""

    path: Path
    card: dict
    bundled: bool

    @property
    def name(self) -> str:
        return self.path.stem

    @property
    def size_mb(self) -> float:
        return self.path.stat().st_size / 1e6

    def summary(self) -> str:
        metrics = self.card.get("metrics", {})
        psnr = metrics.get("val_psnr")
        extra = f", val PSNR {psnr:.2f} dB" if isinstance(psnr, (int, float)) else ""
        return f"{self.name} ({self.size_mb:.1f} MB, {self.card.get('steps', '?')} steps{extra})"


def training_spec(method: str) -> TrainingSpec:
    """The ``TRAINING`` of a registered learned method (its module defines it next to ``SPEC``)."""
    try:
        spec = registry.get(method)
    except KeyError as e:
        raise WeightsError(str(e.args[0])) from None
    module = importlib.import_module(spec.run.__module__)
    training = getattr(module, "TRAINING", None)
    if not isinstance(training, TrainingSpec):
        raise WeightsError(f"method {method!r} is not a trainable learned method (its module "
                           f"{module.__name__} defines no TRAINING)")
    return training


def available(method: str) -> list[WeightsEntry]:
    """Bundled weights of ``method``, default first."""
    return [WeightsEntry(p, learned.read_card(p), True) for p in learned.bundled(method)]


def default(method: str) -> Path | None:
    """The default bundled weights file of ``method`` (None when nothing is bundled)."""
    found = learned.bundled(method)
    return found[0] if found else None


def resolve(method: str, weights: str | Path | None = None) -> Path:
    """The file meant by ``weights``: "" / None = default, a bundled name, or a path."""
    return learned.resolve_weights(method, weights)


def load(method: str, weights: str | Path | None = None, device=None, cache: bool = True):
    """Load ``(model, card)`` for ``method`` (see :func:`resolve`); eval mode, on ``device``,
    through the shared model cache of :func:`napari_unrollrecon.methods.learned.load_cached`."""
    path = resolve(method, weights)
    build = training_spec(method).build_model
    if not cache:
        if not Path(path).exists():
            raise WeightsError(f"weights file {path} does not exist")
        return learned.load_model(path, method, build, device=device)
    return learned.load_cached(path, method, build, device=device)


def clear_cache() -> None:
    learned.clear_model_cache()


def bundle_size_mb() -> float:
    """Total size of the bundled weights folder (the wheel budget is BUNDLE_LIMIT_MB)."""
    folder = learned.BUNDLED_DIR
    return sum(p.stat().st_size for p in folder.glob("*") if p.is_file()) / 1e6


def describe(method: str) -> list[str]:
    """One line per bundled weights file, for ``methods`` listings and the dock."""
    return [e.summary() for e in available(method)]
