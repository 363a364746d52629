"""Layer Conductance (Captum ``LayerConductance``), steps chunked inside the compiled function."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _deprecation, scoring
from jaxviz.attribution import _paths


@functools.partial(jax.jit, static_argnames=("layer", "n_steps", "method", "chunk"))
def _layer_conductance(model, x, target, baselines, layer, n_steps, method, chunk):
    alphas, _ = _paths.quadrature(method, n_steps + 1)
    alphas = jnp.asarray(alphas, x.dtype)
    diff = x - baselines

    def evaluate(a):  # (c,) alphas → layer outputs and gradients, each (c, N, ...)
        points = _paths.path_points(baselines, diff, a)
        c, n = points.shape[:2]
        act, grad = scoring.layer_gradients_and_eval(
            model, points.reshape((c * n,) + x.shape[1:]), jnp.tile(target, c), layer
        )
        return act.reshape((c, n) + act.shape[1:]), grad.reshape((c, n) + grad.shape[1:])

    first_act, first_grad = evaluate(alphas[:1])

    def body(carry, a):
        prev_act, prev_grad, total = carry
        act, grad = evaluate(a)
        acts = jnp.concatenate([prev_act, act])
        grads = jnp.concatenate([prev_grad, grad])
        # Σ_k ∂F/∂layer(α_k) · (layer(α_{k+1}) − layer(α_k)); padding repeats the last alpha: diff 0
        total = total + jnp.sum(grads[:-1] * (acts[1:] - acts[:-1]), axis=0)
        return (act[-1:], grad[-1:], total), None

    rest = _paths.split_chunks(alphas[1:], chunk, fill=alphas[-1])
    (_, _, total), _ = jax.lax.scan(body, (first_act, first_grad, jnp.zeros_like(first_act[0])), rest)
    return total


@_deprecation.positional_keywords("layer", "baselines")
def layer_conductance(
    model,
    x,
    target,
    *,
    layer: str | None = None,
    baselines=None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
):
    """Conductance of every unit of ``layer``: Σ_k ∂F/∂y(α_k)·(y(α_{k+1}) − y(α_k)).

    Captum ``LayerConductance``: ``n_steps + 1`` points of the quadrature ``method`` along
    the path from the baseline to the input, consecutive differences of the layer output.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path of the layer; default: the model's last
        convolutional block (``model.architecture.default_layer``).
      baselines: as for :func:`integrated_gradients`.
      n_steps: number of steps.
      method: quadrature whose alphas place the points.
      internal_batch_size: images per evaluation (memory bound), ``None`` for all at once.

    Returns:
      layer-shaped (N, h, w, c) attributions.

    References:
      Dhamdhere, Sundararajan, Yan. How Important Is a Neuron? (2018).
    """
    x, target, layer, baselines, chunk = _paths.prepare_layer_path(model, x, target, layer, baselines, n_steps,
                                                                  method, internal_batch_size)
    return _layer_conductance(model, x, target, baselines, layer, n_steps, method, chunk)
