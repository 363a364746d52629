"""GradientShap of one unit of a layer (Captum ``NeuronGradientShap``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxviz import scoring
from jaxviz.attribution import _paths, _regions
from jaxviz.attribution.gradient_shap import gradient_shap, resolve_draws


@scoring.neuron_method
def neuron_gradient_shap(model, x, target, *, layer: str, baselines=None, n_samples: int = 5, stdevs: float = 0.0,
                         key=None, baseline_indices=None, noise=None, alphas=None,
                         internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
                         multiply_by_inputs: bool = True):
    """GradientShap of one unit of ``layer``'s output (Captum ``NeuronGradientShap``); the
    options and the random draws are :func:`jaxviz.gradient_shap`'s.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target, layer: the unit and its layer, as :func:`jaxviz.neuron_gradient`'s.
      baselines, n_samples, stdevs, key, baseline_indices, noise, alphas, internal_batch_size,
        multiply_by_inputs: as :func:`jaxviz.gradient_shap`.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Lundberg, Lee. A Unified Approach to Interpreting Model Predictions (2017).
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    options = dict(n_samples=n_samples, stdevs=stdevs, internal_batch_size=internal_batch_size,
                   multiply_by_inputs=multiply_by_inputs)
    found = _regions.neuron_crops(model, x, neuron)
    if found is None:
        return gradient_shap(model, x, neuron, baselines=baselines, key=key, baseline_indices=baseline_indices,
                             noise=noise, alphas=alphas, **options)
    # the whole images' draws, cropped: each image's crop around its unit's receptive field
    distribution, indices, noise, alphas = resolve_draws(x, baselines, n_samples, stdevs, key, baseline_indices,
                                                         noise, alphas)
    size, starts, local = found
    n, count = x.shape[0], distribution.shape[0]
    # image n's crop of baseline k is baseline n·B + k of the cropped distribution
    cropped = _regions.crop_shared(distribution, size, starts)
    indices = indices + count * jnp.arange(n)[None, :]
    if noise.shape[2:] == x.shape[1:]:
        noise = jax.vmap(lambda sample: _regions.crop_images(sample, size, starts))(noise)
    crops = gradient_shap(model, _regions.crop_images(x, size, starts), local, baselines=cropped,
                          baseline_indices=indices, noise=noise, alphas=alphas, **options)
    return _regions.paste_crops(crops, x.shape[1:], starts)
