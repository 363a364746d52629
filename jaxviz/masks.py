"""Feature masks for the perturbation methods (feature ablation, Shapley value sampling,
Lime, KernelShap): superpixels from scikit-image and square patches, as integer ids."""

from __future__ import annotations

import numpy as np

from jaxviz import _checks
from jaxviz.choices import SEGMENTATIONS
from jaxviz.errors import InputError

# Lime's defaults for quickshift; SLIC with 50 segments, as the benchmarks use
DEFAULTS = {
    "slic": {"n_segments": 50, "compactness": 10.0, "sigma": 1.0},
    "quickshift": {"kernel_size": 4, "max_dist": 200, "ratio": 0.2},
    "felzenszwalb": {"scale": 100.0, "sigma": 0.5, "min_size": 50},
}


def segments(images, *, method: str = "slic", **options) -> np.ndarray:
    """Superpixels of each image as a feature mask, (N, H, W) int32 ids 0 … k−1.

    Args:
      images: (N, H, W, 3) or (H, W, 3) uint8 RGB (``jaxviz.deprocess`` gives them from
        normalised inputs).
      method: ``"slic"``, ``"quickshift"`` or ``"felzenszwalb"`` (scikit-image).
      **options: the scikit-image function's own, over :data:`DEFAULTS`.

    Returns:
      (N, H, W) int32 masks, each image's segments numbered from 0 without gaps.

    Example:
      >>> mask = jaxviz.masks.segments(images_uint8, method="slic", n_segments=50)
      >>> attr = jaxviz.feature_ablation(model, x, target, feature_mask=mask)
    """
    from skimage import segmentation

    _checks.check_choice(method, "method", SEGMENTATIONS)
    images = np.asarray(images)
    single = images.ndim == 3
    images = images[None] if single else images
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(f"`images` must be uint8 of shape (N, H, W, 3) or (H, W, 3), got {images.dtype} "
                         f"{images.shape}")
    kwargs = dict(DEFAULTS[method], **options)
    masks = []
    for image in images:
        if method == "slic":
            labels = segmentation.slic(image, start_label=0, **kwargs)
        elif method == "quickshift":
            labels = segmentation.quickshift(image, **kwargs)
        else:
            labels = segmentation.felzenszwalb(image, **kwargs)
        masks.append(np.unique(labels, return_inverse=True)[1].reshape(labels.shape))  # ids 0 … k−1
    masks = np.stack(masks).astype(np.int32)
    return masks[0] if single else masks


def patches(height: int, width: int, size: int | tuple[int, int]) -> np.ndarray:
    """(height, width) int32 ids of square (or ``(h, w)``) patches in row-major order; the
    last row and column of patches are cropped at the edge."""
    ph, pw = (size, size) if isinstance(size, int) else tuple(size)
    for value, name in ((height, "height"), (width, "width"), (ph, "size"), (pw, "size")):
        _checks.check_positive_int(value, name)
    columns = -(-width // pw)
    rows = np.arange(height)[:, None] // ph
    return (rows * columns + np.arange(width)[None, :] // pw).astype(np.int32)
