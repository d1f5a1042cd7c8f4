"""napari writer: a reconstruction layer with its metadata (method, parameters, mask, ratio).

HDF5 (``.h5``/``.hdf5``): dataset ``reconstruction`` (the stage stack or final image) with the
facts as attributes (``engine.io.write``) and the sampling mask as a dataset ``mask`` (too big for
an HDF5 attribute). TIFF: the facts as JSON in the image description; the mask is left out
(its kind, ratio and seed are kept, which regenerate it).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from napari_unrollrecon import META_KEY

_FACTS = ("method", "title", "params", "metrics", "seconds", "stages", "source", "mask_kind", "ratio",
          "realised_ratio", "seed", "views", "modality", "input_kind", "problem", "settings")


def reconstruction_meta(layer_meta: dict) -> tuple[dict, np.ndarray | None]:
    """Facts to store and the mask array, from a layer's ``metadata['unrollrecon']``."""
    info = dict(layer_meta or {})
    facts = {k: info[k] for k in _FACTS if k in info and info[k] is not None}
    problem = info.get("problem") or {}
    for k in ("mask_kind", "ratio", "realised_ratio", "seed", "views", "modality"):
        if k not in facts and k in problem:
            facts[k] = problem[k]
    mask = info.get("mask")
    return facts, (np.asarray(mask) if mask is not None else None)


def write_reconstruction(path: str, data, meta: dict) -> list[str]:
    """npe2 single-layer writer: ``meta`` is the layer's attributes (incl. ``metadata``)."""
    from napari_unrollrecon.engine import io

    facts, mask = reconstruction_meta((meta.get("metadata") or {}).get(META_KEY, {}))
    facts["layer_name"] = meta.get("name", "")
    arr = np.asarray(data)
    h5 = Path(path).suffix.lower() in (".h5", ".hdf5")
    extra = {"mask": mask.astype(np.float32)} if mask is not None and h5 else None
    return [str(io.write(path, arr, facts, extra=extra))]
