"""GradientShap: input × gradient at random points between noisy inputs and random
baselines, averaged (SmoothGrad of Captum's ``InputBaselineXGradient``)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, _random, scoring
from jaxviz.attribution import _paths
from jaxviz.errors import InputError


@functools.partial(jax.jit, static_argnames=("chunk", "multiply_by_inputs", "layer"))
def _gradient_shap(model, x, target, baselines, indices, noise, alphas, chunk, multiply_by_inputs, layer=None):
    n_samples = indices.shape[0]
    weights = jnp.ones((n_samples,), x.dtype)

    def group(a):  # (S, ...) → (groups, chunk, ...), padded with zero-weight samples
        pad = (-n_samples) % chunk
        a = jnp.concatenate([a, jnp.zeros((pad,) + a.shape[1:], a.dtype)])
        return a.reshape((-1, chunk) + a.shape[1:])

    def body(total, samples):
        index, eps, alpha, weight = samples  # (c, N), (c, N, …), (c, N), (c,)
        noisy = x[None] + eps
        base = baselines[index]
        difference = noisy - base
        alpha = alpha[..., None, None, None]
        points = alpha * noisy + (1 - alpha) * base  # Captum's form of b + α(x − b)
        c, n = points.shape[:2]
        flat = lambda v: v.reshape((c * n,) + x.shape[1:])  # noqa: E731
        targets = scoring.repeat_targets(target, c)
        if layer is None:
            grads = scoring.input_gradients(model, flat(points), targets)
        else:  # Captum's LayerGradientShap: the layer's gradient, times y(x + ε) − y(b)
            _, grads = scoring.layer_gradients_and_eval(model, flat(points), targets, layer)
            (at_noisy,), (at_base,) = (scoring.layer_outputs(model, flat(jnp.broadcast_to(v, points.shape)), (layer,))
                                       for v in (noisy, base))
            difference = at_noisy - at_base
        grads = grads.reshape((c, n) + grads.shape[1:])
        terms = difference.reshape(grads.shape) * grads if multiply_by_inputs else grads
        return total + jnp.tensordot(weight, terms, axes=1), None

    shape = x.shape if layer is None else jax.eval_shape(
        lambda v: model.apply(model.params, v, capture=(layer,)), x)[layer].shape
    total, _ = jax.lax.scan(body, jnp.zeros(shape, x.dtype), tuple(map(group, (indices, noise, alphas, weights))))
    return total / n_samples


def gradient_shap(model, x, target, *, baselines=None, n_samples: int = 5, stdevs: float = 0.0, key=None,
                  baseline_indices=None, noise=None, alphas=None,
                  internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
                  multiply_by_inputs: bool = True):
    """GradientShap (Captum ``GradientShap``): the mean over ``n_samples`` samples s of
    (x + εₛ − bₛ)·∇F(bₛ + αₛ(x + εₛ − bₛ)), with bₛ drawn from the baselines, εₛ ~ N(0,
    stdevs²) and αₛ ~ U[0, 1), drawn per image.

    The draws come from ``key`` (JAX's ``threefry_partitionable(False)`` draws, faster on
    a CPU: :func:`sample_draws` gives them), or are passed (``baseline_indices``, ``noise``,
    ``alphas``: any given are used, the rest drawn).  The samples' gradients are evaluated
    inside one compiled ``lax.scan``, ``internal_batch_size // N`` samples (at least one)
    at a time.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      baselines: the distribution to draw from: (B, H, W, 3), (H, W, 3), a scalar, or
        ``None`` (one zero image).
      n_samples: samples per image.
      stdevs: standard deviation of the input noise (0: none, Captum's default).
      key: a ``jax.random`` key; required unless all three draws are given.
      baseline_indices: (n_samples, N) integers in [0, B).
      noise: (n_samples, N, H, W, 3).
      alphas: (n_samples, N) in [0, 1].
      internal_batch_size: gradient evaluations per step; ``None``: all at once.
      multiply_by_inputs: average (x + ε − b)·∇F (default), or the gradients alone.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Lundberg, Lee. A Unified Approach to Interpreting Model Predictions (2017).

    Example:
      >>> attr = jaxviz.gradient_shap(model, x, target, baselines=b, n_samples=20,
      ...                             stdevs=0.1, key=jax.random.key(0))
    """
    return run(model, x, target, None, baselines, n_samples, stdevs, key, baseline_indices, noise, alphas,
               internal_batch_size, multiply_by_inputs)


def run(model, x, target, layer, baselines, n_samples, stdevs, key, baseline_indices, noise, alphas,
        internal_batch_size, multiply_by_inputs):
    """:func:`gradient_shap`'s checks and draws, then the samples at the input (``layer``
    ``None``) or at ``layer`` (:func:`jaxviz.layer_gradient_shap`)."""
    x, target = scoring.prepare(model, x, target, layers=() if layer is None else (layer,))
    baselines, baseline_indices, noise, alphas = resolve_draws(x, baselines, n_samples, stdevs, key,
                                                               baseline_indices, noise, alphas)
    chunk = min(_paths.steps_per_chunk(internal_batch_size, x.shape[0], n_samples), n_samples)
    return _gradient_shap(model, x, target, baselines, baseline_indices.astype(jnp.int32), noise, alphas, chunk,
                          bool(multiply_by_inputs), layer)


def resolve_draws(x, baselines, n_samples, stdevs, key, baseline_indices, noise, alphas):
    """The baselines as a (B, H, W, C) distribution and the draws of ``n_samples`` samples
    of each image of the checked ``x``: those given, checked, and the rest drawn from
    ``key`` (:func:`sample_draws`); ``(baselines, baseline_indices, noise, alphas)``."""
    _checks.check_positive_int(n_samples, "n_samples")
    baselines = _paths.baseline_distribution(baselines, x)
    n, draws = x.shape[0], (n_samples, x.shape[0])
    if key is None and (baseline_indices is None or alphas is None or (noise is None and stdevs)):
        raise InputError("`key` (a jax.random key) is required unless `baseline_indices`, `alphas` and "
                         "(with stdevs) `noise` are given")
    drawn = (sample_draws(key, n_samples, n, baselines.shape[0], x.shape[1:], stdevs, x.dtype) if key is not None
             else (None, jnp.zeros(draws + (1, 1, 1), x.dtype), None))
    baseline_indices = jnp.asarray(drawn[0] if baseline_indices is None else baseline_indices)
    _check_draw(baseline_indices, draws, "baseline_indices")
    if _checks.is_concrete(baseline_indices) and not bool(
            ((baseline_indices >= 0) & (baseline_indices < baselines.shape[0])).all()):
        raise InputError(f"`baseline_indices` must lie in [0, {baselines.shape[0]})")
    noise = jnp.asarray(drawn[1] if noise is None else noise, x.dtype)
    if noise.shape != draws + x.shape[1:] and noise.shape != draws + (1, 1, 1):
        raise InputError(f"`noise` must have shape {draws + tuple(x.shape[1:])}, got {tuple(noise.shape)}")
    alphas = jnp.asarray(drawn[2] if alphas is None else alphas, x.dtype)
    _check_draw(alphas, draws, "alphas")
    return baselines, baseline_indices, noise, alphas


def sample_draws(key, n_samples, n, n_baselines, shape, stdevs, dtype):
    """The draws ``key`` gives :func:`gradient_shap` for ``n_samples`` samples of ``n``
    images: baseline indices uniform over the baselines, noise N(0, stdevs²) per pixel
    (zeros of shape (S, N, 1, 1, 1) when ``stdevs`` is 0), alphas U[0, 1)."""
    index_key, noise_key, alpha_key = jax.random.split(key, 3)
    draws = (n_samples, n)
    with _random.fast_threefry():
        indices = jax.random.randint(index_key, draws, 0, n_baselines)
        noise = (stdevs * jax.random.normal(noise_key, draws + tuple(shape), dtype) if stdevs
                 else jnp.zeros(draws + (1, 1, 1), dtype))
        return indices, noise, jax.random.uniform(alpha_key, draws, dtype)


def _check_draw(values, shape, name):
    if values.shape != shape:
        raise InputError(f"`{name}` must have shape {shape} (n_samples, N), got {tuple(values.shape)}")
