"""Region perturbation (Samek et al.; Quantus ``RegionPerturbation``): the score drop as
square regions are removed, most relevant first."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.attribution import _perturbations
from jaxviz.errors import InputError
from jaxviz.metrics import _common

ORDERS = ("morf", "lerf", "random")


def patch_ids(height: int, width: int, patch_size: int) -> jax.Array:
    """(H, W) each pixel's patch, row-major over a grid of ``patch_size`` squares padded
    to cover the image (Quantus: ⌊pad/2⌋ before, ⌈pad/2⌉ after, per axis)."""
    def grid(size):
        pad = (-size) % patch_size
        return (jnp.arange(size) + pad // 2) // patch_size, -(-size // patch_size)

    rows, _ = grid(height)
    cols, across = grid(width)
    return rows[:, None] * across + cols[None, :]


@functools.partial(jax.jit, static_argnames=("patch_size", "n_regions", "order", "chunk"))
def _region_perturbation(model, x, target, a, key, patch_size, n_regions, order, chunk):
    n, h, w, _ = x.shape
    ids = patch_ids(h, w, patch_size)
    n_patches = -(-h // patch_size) * -(-w // patch_size)
    sums = jax.vmap(lambda m: jax.ops.segment_sum(m.reshape(-1), ids.reshape(-1), num_segments=n_patches))(
        a.sum(axis=-1))  # (N, patches)
    if order == "random":
        keys = jax.random.split(key, n)
        ranks = jax.vmap(lambda k: jnp.argsort(jax.random.permutation(k, n_patches)))(keys).astype(jnp.int32)
    else:
        ranks = _common.relevance_ranks(sums if order == "morf" else -sums)
    pixel_ranks = jnp.take_along_axis(ranks, jnp.broadcast_to(ids.reshape(1, -1), (n, h * w)), axis=1)
    pixel_ranks = pixel_ranks.reshape(1, n, h, w, 1)
    black = jnp.broadcast_to(x.min(axis=(1, 2, 3), keepdims=True), x.shape)

    def keeps_input(states):  # state s has the first s + 1 regions removed
        return pixel_ranks > states[:, None, None, None, None]

    before = scoring.batch_target_probabilities(model, x, target)
    after = _perturbations.mixture_scores(model, x, target, black, n_regions, keeps_input, chunk,
                                          score=scoring.batch_target_probabilities)
    return (before[None] - after).T


def region_perturbation(model, x, target, attributions, *, patch_size: int = 8, order: str = "morf",
                        regions_evaluation: int = 100, key=None, states_per_eval: int | None = None):
    """The drop of the target's probability after each of the first ``regions_evaluation``
    steps of setting one more ``patch_size`` square to the image's smallest value, the
    squares ordered by their summed attribution (Quantus ``RegionPerturbation`` with its
    defaults: 8×8 patches, most relevant first, 100 regions, its ``"black"`` baseline,
    softmax).  Higher is better for ``"morf"``.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W, 3), or (N, H, W) / (N, H, W, 1) shared by the channels.
      patch_size: the squares' side; a grid padded to cover the image (edge squares are
        cropped).
      order: ``"morf"`` (most relevant first), ``"lerf"`` (least relevant first) or
        ``"random"`` (from ``key``).  Equal sums: the later square (row-major) first.
      regions_evaluation: steps (at most the number of squares).
      key: a jax.random key, for ``order="random"``.
      states_per_eval: copies of the batch per forward pass (memory bound).

    Returns:
      (N, steps) drops.

    References:
      Samek, Binder, Montavon, Lapuschkin, Müller. Evaluating the Visualization of What a
      Deep Neural Network Has Learned (IEEE TNNLS 2017).
    """
    x, target = scoring.prepare(model, x, target)
    a = jnp.broadcast_to(_common.check_attributions(attributions, x=x), x.shape).astype(x.dtype)
    patch_size = _checks.check_positive_int(patch_size, "patch_size")
    _checks.check_choice(order, "order", ORDERS)
    if order == "random" and key is None:
        raise InputError("`key` (a jax.random key) is required for order='random'")
    n_patches = -(-x.shape[1] // patch_size) * -(-x.shape[2] // patch_size)
    n_regions = min(_checks.check_positive_int(regions_evaluation, "regions_evaluation"), n_patches)
    chunk = _common.states_per_eval(states_per_eval, n_regions, x)
    key = jax.random.key(0) if key is None else key  # unused unless random
    return _region_perturbation(model, x, target, a, key, patch_size, n_regions, order, chunk)
