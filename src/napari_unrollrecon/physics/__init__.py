"""Forward models: MRI (single-coil 2D and 2D+t), sampling masks, parallel-beam CT."""

from napari_unrollrecon.physics.ct import FBP_FILTERS, RadonOperator, sparse_view_angles
from napari_unrollrecon.physics.fft import fft2c, ifft2c, mask_to_centred, mask_to_uncentred
from napari_unrollrecon.physics.masks import MASK_KINDS, MaskError, centred_mask, make_mask, realised_ratio, save_mask
from napari_unrollrecon.physics.mri import MRIOperator

__all__ = [
    "FBP_FILTERS", "MASK_KINDS", "MRIOperator", "MaskError", "RadonOperator", "fft2c", "ifft2c",
    "centred_mask", "make_mask", "mask_to_centred", "mask_to_uncentred", "realised_ratio", "save_mask",
    "sparse_view_angles",
]
