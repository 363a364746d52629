"""GradientShap at a layer (Captum ``LayerGradientShap``)."""

from __future__ import annotations

from jaxviz.attribution import _paths
from jaxviz.attribution.gradient_shap import run


def layer_gradient_shap(model, x, target, *, layer: str | None = None, baselines=None, n_samples: int = 5,
                        stdevs: float = 0.0, key=None, baseline_indices=None, noise=None, alphas=None,
                        internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
                        multiply_by_inputs: bool = True):
    """GradientShap at ``layer`` (Captum ``LayerGradientShap``): the mean over the samples s
    of (y(x + εₛ) − y(bₛ))·∂F/∂y at bₛ + αₛ(x + εₛ − bₛ), y the layer's output; the draws
    are :func:`jaxviz.gradient_shap`'s.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      baselines, n_samples, stdevs, key, baseline_indices, noise, alphas,
        internal_batch_size, multiply_by_inputs: as :func:`jaxviz.gradient_shap`.

    Returns:
      layer-shaped attributions, (N, h, w, c) or (N, F).

    References:
      Lundberg, Lee. A Unified Approach to Interpreting Model Predictions (2017).
    """
    layer = model.architecture.default_layer if layer is None else layer
    return run(model, x, target, layer, baselines, n_samples, stdevs, key, baseline_indices, noise, alphas,
               internal_batch_size, multiply_by_inputs)
