"""NoiseTunnel: SmoothGrad, SmoothGrad², VarGrad around any attribution method."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks
from jaxviz.errors import InputError

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def _is_array(value) -> bool:
    return isinstance(value, (jax.Array, np.ndarray))


@functools.partial(jax.jit, static_argnames=("method", "nt_type", "static_kwargs"))
def _noise_tunnel(method, model, x, target, noise, array_kwargs, nt_type, static_kwargs):
    kwargs = dict(static_kwargs, **array_kwargs)

    def one(carry, eps):
        total, total_sq = carry
        attr = method(model, x + eps, target, **kwargs)
        return (total + attr, total_sq + attr * attr), None

    shape = jax.eval_shape(lambda: method(model, x, target, **kwargs))
    zeros = jnp.zeros(shape.shape, shape.dtype)
    (total, total_sq), _ = jax.lax.scan(one, (zeros, zeros), noise)
    mean = total / noise.shape[0]
    if nt_type == "smoothgrad":
        return mean
    if nt_type == "smoothgrad_sq":
        return total_sq / noise.shape[0]
    return total_sq / noise.shape[0] - mean * mean


def noise_tunnel(
    method,
    model,
    x,
    target,
    *,
    nt_type: str = "smoothgrad",
    nt_samples: int = 5,
    stdevs: float = 1.0,
    key=None,
    noise=None,
    **method_kwargs,
):
    """Captum ``NoiseTunnel``: ``method`` averaged over noisy copies of ``x``.

    For each of ``nt_samples`` samples s: ``a_s = method(model, x + ε_s, target)``, with
    ε_s ~ N(0, stdevs²).  ``smoothgrad`` returns mean(a_s), ``smoothgrad_sq`` mean(a_s²),
    ``vargrad`` mean(a_s²) − mean(a_s)².  Samples are evaluated one after another inside one
    compiled ``lax.scan``, so memory is that of a single call of ``method``.

    Args:
      method: a jaxviz attribution function, e.g. :func:`jaxviz.saliency`.
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      nt_type: ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
      nt_samples: noisy samples per image.
      stdevs: standard deviation of the noise (absolute, in normalised units).
      key: ``jax.random`` key for the noise (required unless ``noise`` is given).
      noise: the noise itself, shape (nt_samples, N, H, W, 3) — for exact reproduction.
      **method_kwargs: passed to ``method`` (e.g. ``abs=False``, ``n_steps=20``).

    References:
      Smilkov et al. SmoothGrad (2017); Adebayo et al. Local Explanation Methods (2018).
    """
    _checks.check_choice(nt_type, "nt_type", NT_TYPES)
    _checks.check_positive_int(nt_samples, "nt_samples")
    x = _checks.check_images(x, arch=model.arch).astype(model.dtype)
    target = _checks.check_target(target, x.shape[0])
    if method_kwargs.get("return_convergence_delta"):
        raise InputError("`return_convergence_delta` is not supported inside noise_tunnel")
    if noise is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `noise` is given")
        noise = stdevs * jax.random.normal(key, (nt_samples,) + x.shape, x.dtype)
    else:
        noise = jnp.asarray(noise, x.dtype)
        if noise.shape != (nt_samples,) + x.shape:
            raise InputError(f"`noise` must have shape {(nt_samples,) + tuple(x.shape)}, got {tuple(noise.shape)}")
    array_kwargs = {k: v for k, v in method_kwargs.items() if _is_array(v)}
    static_kwargs = tuple(sorted((k, v) for k, v in method_kwargs.items() if not _is_array(v)))
    return _noise_tunnel(method, model, x, target, noise, array_kwargs, nt_type, static_kwargs)
