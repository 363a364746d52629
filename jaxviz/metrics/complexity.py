"""Complexity (Bhatt et al.): the entropy of an attribution map's share per element."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz.metrics import _common


@functools.partial(jax.jit, static_argnames=("absolute", "normalise"))
def _complexity(a, absolute, normalise):
    a = _common.flat_maps(a, normalise=normalise, absolute=absolute)
    share = a / jnp.abs(a).sum(axis=1, keepdims=True)
    return -(share * jnp.log(share + 1e-12)).sum(axis=1)


def complexity(attributions, *, absolute: bool = True, normalise: bool = True):
    """The entropy of each map's fractional contributions, −Σ pᵢ log(pᵢ + 1e−12) with
    pᵢ = |aᵢ| / Σ|a| (Quantus ``Complexity``): low for a map concentrated on few elements.

    Args:
      attributions: (N, ...) one map per image.
      absolute, normalise: as for :func:`jaxviz.metrics.sparseness` (each map by its own
        maximum; Quantus by the batch's, which the entropy does not see up to rounding).

    Returns:
      (N,) entropies in nats (at most log of the number of elements).

    References:
      Bhatt, Weller, Moura. Evaluating and Aggregating Feature-based Model Explanations
      (IJCAI 2020).
    """
    a = _common.check_attributions(attributions)
    return _complexity(a, bool(absolute), bool(normalise))
