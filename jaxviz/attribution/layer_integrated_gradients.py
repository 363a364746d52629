"""Layer Integrated Gradients (Captum ``LayerIntegratedGradients``): the path in the layer's output."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import scoring
from jaxviz.attribution import _paths


@functools.partial(jax.jit, static_argnames=("layer", "n_steps", "method", "chunk", "multiply_by_inputs"))
def _layer_integrated_gradients(model, x, target, baselines, layer, n_steps, method, chunk, multiply_by_inputs):
    alphas, weights = (jnp.asarray(v, x.dtype) for v in _paths.quadrature(method, n_steps))
    (at_x,), (at_b,) = (scoring.layer_outputs(model, v, (layer,)) for v in (x, baselines))
    diff = at_x - at_b

    def score(values, t):
        # the network resumed from the layer's output set to the path point (where the layer
        # cuts the network, nothing before it is evaluated for every point)
        tiled = jnp.tile(x, (values.shape[0] // x.shape[0],) + (1,) * (x.ndim - 1))
        return scoring.target_logits(model, tiled, t, replace={layer: values})[0].sum()

    def body(total, group):
        a, w = group
        points = _paths.path_points(at_b, diff, a)  # (c, N, ...) layer outputs along the path
        c = points.shape[0]
        grads = jax.grad(score)(points.reshape((c * x.shape[0],) + at_x.shape[1:]), scoring.repeat_targets(target, c))
        return total + jnp.tensordot(w, grads.reshape(points.shape), axes=1), None

    groups = (_paths.split_chunks(alphas, chunk), _paths.split_chunks(weights, chunk))  # zero weights pad
    total, _ = jax.lax.scan(body, jnp.zeros_like(at_x), groups)
    return diff * total if multiply_by_inputs else total


def layer_integrated_gradients(model, x, target, *, layer: str | None = None, baselines=None, n_steps: int = 50,
                               method: str = "gausslegendre",
                               internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
                               multiply_by_inputs: bool = True):
    """Integrated Gradients in the output space of ``layer`` (Captum
    ``LayerIntegratedGradients``): (y(x) − y(b)) · Σ_k w_k ∂F/∂y at y(b) + α_k(y(x) − y(b)),
    the network after the layer evaluated at each point of that path.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      baselines, n_steps, method, internal_batch_size: as :func:`jaxviz.integrated_gradients`
        (the baselines are images; their layer outputs are the path's start).
      multiply_by_inputs: ``False`` returns the integrated gradient alone.

    Returns:
      layer-shaped (N, h, w, c) attributions.

    References:
      Sundararajan, Taly, Yan. Axiomatic Attribution for Deep Networks (2017).
    """
    x, target, layer, baselines, chunk = _paths.prepare_layer_path(model, x, target, layer, baselines, n_steps,
                                                                  method, internal_batch_size)
    return _layer_integrated_gradients(model, x, target, baselines, layer, n_steps, method, chunk,
                                       bool(multiply_by_inputs))
