"""Finding what to train: a registered learned method, or any importable module with ``TRAINING``."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType

from napari_unrollrecon.engine import registry
from napari_unrollrecon.methods.learned import TrainingSpec


@dataclass(frozen=True)
class Trainable:
    name: str  # the name model cards carry (the registry name of the method)
    training: TrainingSpec
    modalities: tuple
    module: str


def trainable() -> list[Trainable]:
    """Every registered method whose module defines a ``TRAINING``, and every model named in a
    method module's ``TRAININGS`` (methods with several networks, e.g. DD-UGM's two)."""
    out = [Trainable(name, spec, ("mri",), module) for name, (module, spec) in sorted(_multi().items())]
    for name in registry.names():
        try:
            out.append(resolve(name))
        except (KeyError, ValueError, ImportError):
            continue
    return out


def resolve(name: str) -> Trainable:
    """``name`` is a registry name (``cgpd-csnet``) or a module path (``mypkg.mymethod``)."""
    multi = _multi()
    if name in multi:
        module, training = multi[name]
        return Trainable(name=name, training=training, modalities=("mri",), module=module)
    try:
        spec = registry.get(name)
        module = importlib.import_module(spec.run.__module__)
    except KeyError:
        try:
            module = importlib.import_module(name)
        except ImportError:
            names = [t.name for t in trainable()]
            raise ValueError(f"no method {name!r}: trainable methods are {names or 'none yet'}, "
                             "or give an importable module that defines TRAINING") from None
        spec = getattr(module, "SPEC", None)
    return _from_module(module, spec, name)


def _multi() -> dict:
    """name → (module name, TrainingSpec) from every ``TRAININGS`` table in napari_unrollrecon.methods."""
    import pkgutil

    import napari_unrollrecon.methods as pkg

    out = {}
    for info in pkgutil.iter_modules(pkg.__path__):
        module = importlib.import_module(f"{pkg.__name__}.{info.name}")
        for name, spec in getattr(module, "TRAININGS", {}).items():
            if isinstance(spec, TrainingSpec):
                out[name] = (module.__name__, spec)
    return out


def _from_module(module: ModuleType, spec, name: str) -> Trainable:
    training = getattr(module, "TRAINING", None)
    if not isinstance(training, TrainingSpec):
        raise ValueError(f"method {name!r} cannot be trained: its module {module.__name__} defines no "
                         "TRAINING = TrainingSpec(...) (see napari_unrollrecon/methods/learned.py)")
    modalities = tuple(spec.modalities) if spec is not None else tuple(getattr(module, "MODALITIES", ("mri",)))
    return Trainable(name=spec.name if spec is not None else name, training=training,
                     modalities=modalities, module=module.__name__)
