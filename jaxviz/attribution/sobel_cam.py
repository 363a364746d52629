"""The Sobel map (pytorch-grad-cam's ``sobel_cam``): the image's edges, a baseline a
faithfulness metric should rank below every real explanation."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import scoring
from jaxviz.images import MEAN, STD

# cv2.cvtColor(RGB2GRAY) on uint8: fixed point, 15 bits (OpenCV 4.x; the 14-bit weights of its
# older scalar code differ in ~0.1 % of pixels)
GRAY_WEIGHTS, GRAY_SHIFT = (9798, 19235, 3735), 15
SOBEL = np.array([[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]])


def _sobel(gray, kernel):
    """3×3 correlation with OpenCV's default border (BORDER_REFLECT_101), (N, H, W)."""
    padded = jnp.pad(gray, ((0, 0), (1, 1), (1, 1)), mode="reflect")
    height, width = gray.shape[1:]
    return sum(int(kernel[i, j]) * padded[:, i:i + height, j:j + width]
               for i in range(3) for j in range(3) if kernel[i, j])


@jax.jit
def _sobel_cam(x):
    # deprocess's uint8 image, in its float32 arithmetic
    rgb = x.astype(jnp.float32) * STD.reshape(1, 1, 1, 3) + MEAN.reshape(1, 1, 1, 3)
    rgb = jnp.round(jnp.clip(rgb, 0.0, 1.0) * 255.0).astype(jnp.int32)
    gray = (sum(w * rgb[..., c] for c, w in enumerate(GRAY_WEIGHTS)) + (1 << (GRAY_SHIFT - 1))) >> GRAY_SHIFT
    magnitudes = [jnp.minimum(jnp.abs(_sobel(gray, k)), 255) for k in (SOBEL, SOBEL.T)]  # convertScaleAbs
    # addWeighted(·, 0.5, ·, 0.5, 0): rounded half to even, as OpenCV's cvRound
    return jnp.round((magnitudes[0] + magnitudes[1]).astype(jnp.float32) * 0.5) / 255.0


def sobel_cam(model, x, target):
    """pytorch-grad-cam's ``sobel_cam`` of each image (the edge map a saliency method should
    not reduce to), / 255: (N, H, W) in [0, 1].

    The images are turned back into uint8 RGB first (``deprocess``: x·std + mean, ×255,
    rounded); then, as OpenCV computes it, the gray image (RGB2GRAY's 15-bit fixed point),
    |Sobel x| and |Sobel y| (3×3, reflect-101 border, saturated at 255) and their mean,
    rounded.  ``model`` and ``target`` are only checked: the map depends on the image alone.

    References:
      Adebayo et al. Sanity Checks for Saliency Maps (NeurIPS 2018), the edge detector
      as a baseline; Gildenblat and contributors, pytorch-grad-cam (2021).
    """
    x, target = scoring.prepare(model, x, target)
    return _sobel_cam(x).astype(x.dtype)
