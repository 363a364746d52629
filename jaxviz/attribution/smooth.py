"""NoiseTunnel: SmoothGrad, SmoothGrad², VarGrad around any attribution method, as a
combinator that returns a function with the wrapped method's signature."""

from __future__ import annotations

import functools
import inspect
import warnings

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _random, scoring
from jaxviz.choices import NT_TYPES
from jaxviz.errors import InputError


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


def smooth(method, *, nt_type: str = "smoothgrad", nt_samples: int = 5, stdevs: float = 1.0):
    """NoiseTunnel as a combinator: ``method`` averaged over noisy copies of the input.

    Returns a function with ``method``'s signature, ``f(model, x, target, *, key=None,
    noise=None, **options)``, where ``options`` go to ``method``.  For each of
    ``nt_samples`` samples s: ``a_s = method(model, x + ε_s, target)``, with ε_s ~
    N(0, stdevs²) drawn from ``key`` (``jax.random.normal(key, (nt_samples,) + x.shape)``
    in JAX's ``threefry_partitionable(False)`` mode, faster on a CPU).  ``smoothgrad``
    returns mean(a_s), ``smoothgrad_sq`` mean(a_s²), ``vargrad`` mean(a_s²) − mean(a_s)².
    Samples are evaluated one after another inside one compiled ``lax.scan``, so memory is
    that of a single call of ``method``.  Captum ``NoiseTunnel`` given the same noise.

    Args:
      method: a jaxviz attribution function, e.g. :func:`jaxviz.saliency`.
      nt_type: ``"smoothgrad"``, ``"smoothgrad_sq"`` or ``"vargrad"``.
      nt_samples: noisy samples per image.
      stdevs: standard deviation of the noise (absolute, in normalised units).

    The returned function also takes ``key`` (a ``jax.random`` key, required unless
    ``noise`` is given) and ``noise``, shape (nt_samples, N, H, W, 3), for exact
    reproduction.

    References:
      Smilkov et al. SmoothGrad (2017); Adebayo et al. Local Explanation Methods (2018).

    Example:
      >>> smoothgrad = jaxviz.smooth(jaxviz.saliency, nt_samples=25, stdevs=0.15)
      >>> attr = smoothgrad(model, x, target, key=jax.random.key(0))
    """
    _checks.check_choice(nt_type, "nt_type", NT_TYPES)
    _checks.check_positive_int(nt_samples, "nt_samples")

    def smoothed(model, x, target, *, key=None, noise=None, **method_kwargs):
        if getattr(method, "neuron_target", False):  # the target is a unit of the method's layer
            if "layer" not in method_kwargs:
                raise InputError(f"{getattr(method, '__name__', 'the method')} needs `layer`")
            x, target = scoring.prepare_neuron(model, x, method_kwargs["layer"], target)
        else:
            x, target = scoring.prepare(model, x, target)
        if method_kwargs.get("return_convergence_delta"):
            raise InputError("`return_convergence_delta` is not supported inside smooth")
        if noise is None:
            if key is None:
                raise InputError("`key` (a jax.random key) is required unless `noise` is given")
            with _random.fast_threefry():
                noise = stdevs * jax.random.normal(key, (nt_samples,) + x.shape, x.dtype)
        else:
            noise = jnp.asarray(noise, x.dtype)
            if noise.shape != (nt_samples,) + x.shape:
                raise InputError(f"`noise` must have shape {(nt_samples,) + tuple(x.shape)}, got {tuple(noise.shape)}")
        array_kwargs = {k: v for k, v in method_kwargs.items() if _is_array(v)}
        static_kwargs = tuple(sorted((k, v) for k, v in method_kwargs.items() if not _is_array(v)))
        return _noise_tunnel(method, model, x, target, noise, array_kwargs, nt_type, static_kwargs)

    smoothed.__name__ = smoothed.__qualname__ = f"smooth_{getattr(method, '__name__', 'method')}"
    smoothed.__doc__ = method.__doc__
    # its signature is the method's, plus key and noise
    own = [p for p in inspect.signature(method).parameters.values() if p.kind is not p.VAR_KEYWORD]
    smoothed.__signature__ = inspect.Signature(own + [
        inspect.Parameter("key", inspect.Parameter.KEYWORD_ONLY, default=None),
        inspect.Parameter("noise", inspect.Parameter.KEYWORD_ONLY, default=None)])
    return smoothed


def noise_tunnel(method, model, x, target, *, nt_type: str = "smoothgrad", nt_samples: int = 5,
                 stdevs: float = 1.0, key=None, noise=None, **method_kwargs):
    """Deprecated: ``smooth(method, nt_type=..., nt_samples=..., stdevs=...)(model, x,
    target, key=..., noise=...)`` (Captum's ``NoiseTunnel`` call form)."""
    warnings.warn("jaxviz.noise_tunnel(method, model, ...) is deprecated; use "
                  "jaxviz.smooth(method, nt_type=..., nt_samples=..., stdevs=...)(model, x, target, key=...)",
                  DeprecationWarning, stacklevel=2)
    return smooth(method, nt_type=nt_type, nt_samples=nt_samples, stdevs=stdevs)(
        model, x, target, key=key, noise=noise, **method_kwargs)
