"""From loaded data and user settings to a :class:`Problem` - shared by the CLI, bench and dock.

Rules (documented for users in the README):

* An *image* is simulated: MRI k-space ``y = M F x`` with the chosen mask, or a CT sinogram with
  ``views`` views over 180°. Noise-free unless ``noise`` > 0.
* *k-space* is used as measured. With a mask option it is first undersampled retrospectively
  (the input is taken to be fully sampled); without one, the sampled points are its non-zeros.
* A *sinogram* (views, detectors) is used as measured; ``views`` then selects that many evenly
  spread views out of it (sparse-view from a full scan).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from napari_unrollrecon.engine import memory, problems


@dataclass
class MaskSettings:
    """A generated mask (kind, ratio, seed, centre fraction), a mask file, or a mask array (a
    napari layer's); files and arrays get their layout detected (``centred=None``) or stated."""

    kind: str | None = "cartesian"
    ratio: float = 0.25
    seed: int = 0
    center_fraction: float | None = None
    file: str | None = None
    key: str | None = None
    array: np.ndarray | None = None
    centred: bool | None = None
    name: str = "mask layer"

    @property
    def given(self) -> bool:
        return bool(self.file) or self.array is not None or bool(self.kind)

    def make(self, shape) -> tuple[np.ndarray, dict]:
        """Return the centred mask for ``shape`` ((H, W) or (T, H, W)) and a description."""
        from napari_unrollrecon.physics import masks

        if self.array is not None:
            mask, info = masks.centred_mask(self.array, self.centred, source=self.name)
            if mask.shape[-2:] != tuple(shape[-2:]) or (mask.ndim == 3 and (len(shape) != 3 or mask.shape[0] != shape[0])):
                raise ValueError(f"{self.name} shape {mask.shape} does not match the data shape {tuple(shape)}; "
                                 "use a mask made for this size or a generated mask")
            desc = {"mask": self.name, "mask_note": info["message"], "mask_layout": info["assumed"]}
        elif self.file:
            from napari_unrollrecon.engine.io import read_mask

            mask, info = read_mask(self.file, key=self.key)
            if mask.shape[-2:] != tuple(shape[-2:]):
                raise ValueError(
                    f"mask {self.file} has shape {mask.shape[-2:]} but the data is {tuple(shape[-2:])}; "
                    "use a mask made for this image size"
                )
            desc = {"mask": str(self.file), "mask_note": info.get("message", ""), "mask_layout": info["assumed"]}
        else:
            # working set per pixel: flat index/priority arrays (poisson: also radii and occupancy)
            per = 256 if self.kind == "poisson" else 128  # measured ≈ 180 (poisson) and 90 B/px (gaussian)
            memory.check(memory.array_bytes(shape, per), f"a {self.kind} mask of {' × '.join(map(str, shape))}")
            mask = masks.make_mask(self.kind, tuple(shape), self.ratio, self.seed, self.center_fraction)
            desc = {"mask": self.kind, "requested_ratio": self.ratio, "seed": self.seed}
        desc["ratio"] = float(masks.realised_ratio(mask))
        return mask.astype(np.float32), desc


def parse_ratio(value) -> float:
    """Accept a fraction (0.25) or a percentage (25); reject anything outside (0, 1]."""
    r = float(value)
    if r > 1:
        r /= 100.0
    if not 0 < r <= 1:
        raise ValueError(f"sampling ratio {value!r} must be a fraction in (0, 1] or a percentage in (0, 100]")
    return r


def build_problem(data: np.ndarray, kind: str, modality: str, mask: MaskSettings | None = None,
                  views: int | None = None, device="cpu", noise: float = 0.0, seed: int = 0):
    """Build the Problem for one input. ``kind`` is image, kspace or sinogram; ``modality`` mri,
    dmri or ct. Returns (problem, description dict)."""
    if modality == "ct":
        return _ct_problem(data, kind, views, device, noise, seed)
    if kind == "sinogram":
        raise ValueError("a sinogram input needs a CT method (fbp, tv, l1-wavelet with --modality ct)")
    expect = 3 if modality == "dmri" else 2
    if data.ndim != expect:
        what = "(frames, H, W)" if modality == "dmri" else "(H, W)"
        raise ValueError(f"{modality} data must be {what}; got shape {data.shape}")
    if kind == "kspace":
        if not np.iscomplexobj(data):
            raise ValueError("k-space must be complex, but this data is real-valued (an image, or |k| only); "
                             "choose 'image' if it is an image")
        if mask is not None and mask.given:
            m, desc = mask.make(data.shape)
            return problems.mri_from_kspace(data * m, m, device, meta=desc), desc
        p = problems.mri_from_kspace(data, None, device)
        return p, {"mask": "from k-space non-zeros", "ratio": p.meta["ratio"]}
    mask = mask or MaskSettings()
    m, desc = mask.make(data.shape)
    return problems.mri_from_image(data, m, device, noise=noise, seed=seed, meta=desc), desc


def _ct_problem(data, kind, views, device, noise, seed):
    if views is not None and int(views) < 1:
        raise ValueError(f"the number of views must be at least 1, got {views}")
    if data.ndim != 2:
        raise ValueError(f"CT data must be one 2D image or sinogram; got shape {data.shape}")
    if kind == "kspace":
        raise ValueError("k-space input cannot be reconstructed with CT; choose an MRI method")
    if kind == "sinogram":
        from napari_unrollrecon.physics.ct import sparse_view_angles

        sino = np.real(data).astype(np.float32)
        full = sino.shape[0]
        views = views or full
        if views > full:
            raise ValueError(f"--views {views} is more than the {full} views in the sinogram")
        angles = sparse_view_angles(views, full_views=full)  # every k-th view of the full scan
        idx = np.round(angles * full / 180.0).astype(int)
        p = problems.ct_from_sinogram(sino[idx], device=device, angles=angles)
        return p, {"views": views, "input": "sinogram", "full_views": full}
    views = views or 60
    p = problems.ct_from_image(np.real(data), views, device=device, noise=noise, seed=seed)
    return p, {"views": views}


def infer_modality(method_modalities: tuple[str, ...], kind: str, ndim: int, views: int | None,
                   requested: str = "auto") -> str:
    """Pick the modality: explicit request, else sinogram or --views or a CT-only method -> ct,
    a 3D input for a method that handles dynamic data -> dmri, else mri."""
    if requested != "auto":
        return requested
    if kind == "sinogram" or views is not None or method_modalities == ("ct",):
        return "ct"
    if ndim == 3 and "dmri" in method_modalities:
        return "dmri"
    return "mri" if "mri" in method_modalities else method_modalities[0]
