"""The method registry: every method the CLI, the dock and ``bench`` can run.

Built-in methods are listed by module path and imported on first use, so importing the registry
stays cheap. Third parties (or later issues) call :func:`register` with a ``MethodSpec``.
"""

from __future__ import annotations

import importlib

from napari_unrollrecon.methods.base import MethodSpec

_BUILTIN = {
    "zero-filled": "napari_unrollrecon.methods.zero_filled",
    "fbp": "napari_unrollrecon.methods.fbp",
    "tv": "napari_unrollrecon.methods.tv",
    "l1-wavelet": "napari_unrollrecon.methods.l1_wavelet",
    "lplus-s": "napari_unrollrecon.methods.lplus_s",
    "cgpd-csnet": "napari_unrollrecon.methods.cgpd_csnet",
    "gdunet": "napari_unrollrecon.methods.gdunet",
    "hggdp": "napari_unrollrecon.methods.hggdp",
    "dd-ugm": "napari_unrollrecon.methods.dd_ugm",
    "gaussian-langevin": "napari_unrollrecon.methods.gaussian_langevin",
}
_REGISTRY: dict[str, MethodSpec] = {}


def register(spec: MethodSpec, replace: bool = False) -> MethodSpec:
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"a method named {spec.name!r} is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def names() -> list[str]:
    """All method names, built-in first, in a stable order."""
    return list(dict.fromkeys([*_BUILTIN, *_REGISTRY]))


def get(name: str) -> MethodSpec:
    if name not in _REGISTRY:
        module = _BUILTIN.get(name)
        if module is None:
            raise KeyError(f"unknown method {name!r}; available: {', '.join(names())}")
        _REGISTRY[name] = importlib.import_module(module).SPEC
    return _REGISTRY[name]


def for_modality(modality: str) -> list[MethodSpec]:
    return [get(n) for n in names() if modality in get(n).modalities]
