"""Forward models: MRI (single-coil 2D and 2D+t), sampling masks, parallel-beam CT."""

from napari_unrollrecon.physics.fft import fft2c, ifft2c
from napari_unrollrecon.physics.mri import MRIOperator

__all__ = ["fft2c", "ifft2c", "MRIOperator"]
