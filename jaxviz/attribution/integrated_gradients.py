"""Integrated Gradients with Captum's quadratures, steps chunked inside the compiled function."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _deprecation, scoring
from jaxviz.attribution import _paths


def path_gradient_sum(model, x, target, baselines, alphas, weights, chunk: int):
    """Σ_k w_k ∇F(b + α_k(x − b)), (N, H, W, C): the (k,) ``alphas`` and ``weights`` taken
    ``chunk`` steps (of the whole batch) per gradient evaluation inside one ``lax.scan``,
    zero-weight steps filling the last chunk."""
    diff = x - baselines

    def weighted_grads(group):  # group: (chunk,) alphas and weights
        a, w = group
        points = _paths.path_points(baselines, diff, a)  # (c, N, H, W, C)
        c, n = points.shape[:2]
        flat = points.reshape((c * n,) + x.shape[1:])
        grads = scoring.input_gradients(model, flat, scoring.repeat_targets(target, c)).reshape(points.shape)
        return jnp.tensordot(w, grads, axes=1)

    def body(acc, group):
        return acc + weighted_grads(group), None

    groups = (_paths.split_chunks(alphas, chunk), _paths.split_chunks(weights, chunk))
    summed, _ = jax.lax.scan(body, jnp.zeros_like(x), groups)
    return summed


# the quadrature's points and weights are arguments: one program serves every method
@functools.partial(jax.jit, static_argnames=("chunk", "with_delta"))
def _integrated_gradients(model, x, target, baselines, alphas, weights, chunk, with_delta, repeats):
    baselines = jnp.broadcast_to(baselines, x.shape)  # one for every image is made here, not on the host

    def body(x, target, baselines):
        summed = path_gradient_sum(model, x, target, baselines, alphas, weights, chunk)
        attributions = (x - baselines) * summed
        if not with_delta:
            return attributions

        def scores(v):
            return scoring.target_logits(model, v, target)[0]

        delta = attributions.reshape(x.shape[0], -1).sum(axis=1) - (scores(x) - scores(baselines))
        return attributions, delta

    return scoring.per_image(body, repeats, x, target, baselines)


@_deprecation.positional_keywords("baselines")
def integrated_gradients(
    model,
    x,
    target,
    *,
    baselines=None,
    n_steps: int = 50,
    method: str = "gausslegendre",
    internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
    return_convergence_delta: bool = False,
):
    """Captum ``IntegratedGradients``: (x − b)·Σ_k w_k ∇F(b + α_k(x − b)).

    The ``n_steps`` gradient evaluations run inside one compiled ``lax.scan`` in chunks of
    ``internal_batch_size // N`` steps (at least 1), so memory is bounded by about
    ``internal_batch_size`` images' forward-and-backward activations, whatever ``n_steps``
    is.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      baselines: ``None`` (zeros), a scalar, or an array of shape (H, W, 3), (1, H, W, 3)
        or (N, H, W, 3).
      n_steps: number of quadrature points.
      method: ``"gausslegendre"`` or ``"riemann_left|right|middle|trapezoid"``; alphas and
        weights are computed in float64.
      internal_batch_size: images per gradient evaluation; ``None`` evaluates all steps at once.
      return_convergence_delta: also return Σ attributions − (F(x) − F(baseline)), (N,).

    Returns:
      (N, H, W, 3) attributions, and the (N,) delta if asked.

    References:
      Sundararajan, Taly, Yan. Axiomatic Attribution for Deep Networks (2017).
    """
    _checks.check_positive_int(n_steps, "n_steps")
    _checks.check_choice(method, "method", _paths.METHODS)
    x, target = scoring.prepare(model, x, target)
    baselines = _paths.checked_baselines(baselines, x)
    repeats = scoring.find_repeats(x, target, baselines)
    images = x.shape[0] if repeats is None else repeats.requests.size  # gradients per step
    chunk = min(_paths.steps_per_chunk(internal_batch_size, images, n_steps), n_steps)
    alphas, weights = (np.asarray(v, x.dtype) for v in _paths.quadrature(method, n_steps))
    return _integrated_gradients(
        model, x, target, baselines, alphas, weights, chunk, bool(return_convergence_delta), repeats
    )
