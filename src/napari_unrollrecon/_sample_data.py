"""Sample data for File > Open Sample: honest phantoms, named as phantoms.

No real MRI or CT data can be shipped (licences), and scikit-image's brain sample needs a
download, so every sample is synthetic (``engine.phantoms``):

* MRI: a complex Shepp-Logan head phantom with smooth phase (shown as magnitude) and its fully
  sampled centred k-space (shown as log-magnitude; the complex data is in the layer metadata).
  The dock undersamples the k-space with the mask you choose.
* MRI (magnitude): the same head as a real, non-negative image with its k-space - the kind of
  data the CGPD-CSNet brain benchmark uses (real-valued networks discard the phase).
* Cine: a beating-heart phantom, 16 frames of 128².
* CT: the Shepp-Logan phantom and its 180-view parallel-beam sinogram; the dock keeps the
  number of views you choose (sparse view).
"""

from __future__ import annotations

import numpy as np

from napari_unrollrecon import META_KEY



def _log_magnitude(k: np.ndarray) -> np.ndarray:
    """Display form of k-space: log(1 + |k| / (1e-4 · max|k|)), float32."""
    a = np.abs(k)
    return np.log1p(a / (1e-4 * max(float(a.max()), 1e-30))).astype(np.float32)


def mri_sample(n: int = 256, magnitude: bool = False):
    """Complex head phantom (magnitude shown) and its fully sampled k-space; ``magnitude``: the
    real magnitude image and its k-space instead."""
    from napari_unrollrecon.engine.phantoms import mri_phantom
    from napari_unrollrecon.physics.fft import fft2c

    import torch

    image = mri_phantom(n)
    if magnitude:
        image = np.abs(image).astype(np.complex128)
    kspace = fft2c(torch.from_numpy(image)).numpy().astype(np.complex64)
    gt_name = "MRI phantom, magnitude (ground truth)" if magnitude else "MRI phantom (ground truth)"
    return [
        (np.abs(image).astype(np.float32),
         {"name": gt_name, "metadata": {META_KEY: {"kind": "image", "complex": image, "phantom": True}}},
         "image"),
        (_log_magnitude(kspace),
         {"name": f"MRI phantom{', magnitude,' if magnitude else ''} k-space (full, log |k|)", "colormap": "gray",
          "metadata": {META_KEY: {"kind": "kspace", "complex": kspace, "reference": gt_name, "phantom": True,
                                  "display": "log magnitude; complex k-space kept here"}}},
         "image"),
    ]


def mri_magnitude_sample(n: int = 256):
    """The head phantom as a real magnitude image with its k-space (for real-valued networks)."""
    return mri_sample(n, magnitude=True)


def cine_sample(frames: int = 16, n: int = 128):
    """Beating-heart phantom series (frames, n, n); the dock simulates undersampled k-t data."""
    from napari_unrollrecon.engine.phantoms import cine_phantom

    return [(cine_phantom(frames, n),
             {"name": "cardiac cine phantom", "metadata": {META_KEY: {"kind": "image", "phantom": True}}},
             "image")]


def ct_sample(n: int = 256, views: int = 180):
    """Shepp-Logan CT phantom and its full parallel-beam sinogram (views, detectors)."""
    import torch

    from napari_unrollrecon.engine.phantoms import ct_phantom
    from napari_unrollrecon.physics.ct import RadonOperator

    image = ct_phantom(n)
    with torch.no_grad():
        sino = RadonOperator(n, n_views=views).A(torch.from_numpy(image)).numpy().astype(np.float32)
    gt_name = "CT phantom (ground truth)"
    return [
        (image, {"name": gt_name, "metadata": {META_KEY: {"kind": "image", "phantom": True}}}, "image"),
        (sino, {"name": f"CT phantom sinogram ({views} views)",
                "metadata": {META_KEY: {"kind": "sinogram", "reference": gt_name, "phantom": True}}}, "image"),
    ]
