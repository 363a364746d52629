"""Internal Influence (Captum ``InternalInfluence``): layer gradients integrated along the input path."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import scoring
from jaxviz.attribution import _paths


@functools.partial(jax.jit, static_argnames=("layer", "n_steps", "method", "chunk"))
def _internal_influence(model, x, target, baselines, layer, n_steps, method, chunk):
    alphas, weights = (jnp.asarray(v, x.dtype) for v in _paths.quadrature(method, n_steps))
    diff = x - baselines

    def body(total, group):
        a, w = group
        points = _paths.path_points(baselines, diff, a)  # (c, N, H, W, C)
        c, n = points.shape[:2]
        _, grads = scoring.layer_gradients_and_eval(model, points.reshape((c * n,) + x.shape[1:]),
                                                    scoring.repeat_targets(target, c), layer)
        return total + jnp.tensordot(w, grads.reshape((c, n) + grads.shape[1:]), axes=1), None

    shape = jax.eval_shape(lambda v: model.apply(model.params, v, capture=(layer,)), x)[layer]
    groups = (_paths.split_chunks(alphas, chunk), _paths.split_chunks(weights, chunk))  # zero weights pad
    total, _ = jax.lax.scan(body, jnp.zeros(shape.shape, x.dtype), groups)
    return total


def internal_influence(model, x, target, *, layer: str | None = None, baselines=None, n_steps: int = 50,
                       method: str = "gausslegendre",
                       internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE):
    """The gradient of the target score with respect to ``layer``, integrated along the
    straight path from the baselines to the images: Σ_k w_k ∂F/∂y(b + α_k(x − b)) (Captum
    ``InternalInfluence``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      baselines, n_steps, method, internal_batch_size: as :func:`jaxviz.integrated_gradients`.

    Returns:
      layer-shaped (N, h, w, c) attributions.

    References:
      Leino et al. Influence-Directed Explanations for Deep Convolutional Networks (2018).
    """
    x, target, layer, baselines, chunk = _paths.prepare_layer_path(model, x, target, layer, baselines, n_steps,
                                                                  method, internal_batch_size)
    return _internal_influence(model, x, target, baselines, layer, n_steps, method, chunk)
