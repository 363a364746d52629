"""Sparseness (Chalasani et al.): the Gini index of an attribution map."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz.metrics import _common


@functools.partial(jax.jit, static_argnames=("absolute", "normalise"))
def _sparseness(a, absolute, normalise):
    a = _common.flat_maps(a, normalise=normalise, absolute=absolute)
    a = jnp.sort(a + 1e-7, axis=1)
    k = a.shape[1]
    place = jnp.arange(1, k + 1, dtype=a.dtype)
    return ((2 * place[None] - k - 1) * a).sum(axis=1) / (k * a.sum(axis=1))


def sparseness(attributions, *, absolute: bool = True, normalise: bool = True):
    """The Gini index of each attribution map: 1 when one element holds all the
    attribution, 0 when every element holds the same (Quantus ``Sparseness``).

    Args:
      attributions: (N, ...) one map per image, any shape after the batch.
      absolute: take magnitudes first (Quantus' default, ``abs=True``).
      normalise: divide each map by its largest magnitude first (Quantus' default).
        Quantus divides by the largest of the whole batch; here each map by its own, so a
        score does not depend on the batch (pass Quantus
        ``normalise_func_kwargs={"normalise_axes": (1, 2, 3)}`` to compare).

    Returns:
      (N,) Gini indices (Quantus adds 1e-7 to every element before sorting; so does this).

    References:
      Chalasani, Chen, Chowdhury, Wu, Jha. Concise Explanations of Neural Networks using
      Adversarial Training (ICML 2020).
    """
    a = _common.check_attributions(attributions)
    return _sparseness(a, bool(absolute), bool(normalise))
