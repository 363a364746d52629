"""The course's presentation of saliency: :func:`~jaxviz.attribution.saliency.saliency`
reduced to the course's (N, H, W) map, not a method of its own.  (The course's GradCAM is
:func:`~jaxviz.attribution.gradcam.gradcam` with its default output.)
"""

from __future__ import annotations

from jaxviz.attribution.saliency import checked_saliency


def saliency_map(model, x, target):
    """The course's saliency map: max over channels of |∇ₓ target score|, (N, H, W).

    References:
      Simonyan, Vedaldi, Zisserman. Deep Inside Convolutional Networks (2014).
    """
    return checked_saliency(model, x, target, True, channel_max=True)
