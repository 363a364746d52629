"""The course's presentation of saliency: :func:`~jaxviz.attribution.saliency.saliency`
reduced to the course's (N, H, W) map, not a method of its own.  (The course's GradCAM is
:func:`~jaxviz.attribution.gradcam.gradcam` with its default output.)
"""

from __future__ import annotations

import jax.numpy as jnp

from jaxviz.attribution.saliency import saliency


def saliency_map(model, x, target):
    """The course's saliency map: max over channels of |∇ₓ target score|, (N, H, W)."""
    return jnp.max(saliency(model, x, target, absolute=True), axis=-1)
