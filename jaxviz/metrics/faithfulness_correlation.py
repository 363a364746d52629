"""Faithfulness correlation (Bhatt et al.; Quantus ``FaithfulnessCorrelation``): do the
attributions of random subsets of elements predict the score drop when those elements are
removed?"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _perturbations
from jaxviz.errors import InputError
from jaxviz.metrics import _common, similarity as _similarity


@functools.partial(jax.jit, static_argnums=(1, 2, 3, 4))
def random_subsets(key, n_runs: int, n: int, n_features: int, subset_size: int):
    """(n_runs, N, subset_size) element indices (NHWC order), each row a uniformly random
    subset.

    Small subsets (subset_size² ≤ n_features, as Quantus' 224 of an image's elements) by
    Floyd's algorithm: for j = n_features − subset_size, …, n_features − 1, a draw t from
    0…j joins the subset, or j does when t already has; subset_size draws and subset_size²
    comparisons per subset.  Larger ones as the places of the subset_size largest of
    n_features uniform draws, one run at a time."""
    if subset_size * subset_size > n_features:
        def run(r):
            scores = jax.random.uniform(jax.random.fold_in(key, r), (n, n_features))
            return jax.lax.top_k(scores, subset_size)[1].astype(jnp.int32)

        return jax.lax.map(run, jnp.arange(n_runs))
    first = n_features - subset_size
    highest = first + jnp.arange(subset_size, dtype=jnp.int32)[:, None, None]  # draw i is from 0…first + i
    draws = jax.random.randint(key, (subset_size, n_runs, n), 0, highest + 1, dtype=jnp.int32)

    def join(i, chosen):
        t = draws[i]
        taken = (chosen == t[..., None]).any(axis=-1)
        return chosen.at[..., i].set(jnp.where(taken, first + i, t))

    return jax.lax.fori_loop(0, subset_size, join, jnp.full((n_runs, n, subset_size), -1, jnp.int32))


@functools.partial(jax.jit, static_argnames=("n_runs", "chunk"))
def _faithfulness_correlation(model, x, target, a, subsets, n_runs, chunk):
    n = x.shape[0]
    flat = x.reshape(n, -1)
    black = jnp.broadcast_to(flat.min(axis=1)[:, None], flat.shape).reshape(x.shape)

    def keeps_input(ids):  # the subsets' elements removed
        rows = subsets[jnp.minimum(ids, n_runs - 1)]  # (k, N, S)
        k = rows.shape[0]
        removed = jnp.zeros((k, n, flat.shape[1]), bool)
        removed = removed.at[jnp.arange(k)[:, None, None], jnp.arange(n)[None, :, None], rows].set(True)
        return ~removed.reshape((k,) + x.shape)

    logits = scoring.batch_target_logits(model, x, target)
    removed = _perturbations.mixture_scores(model, x, target, black, n_runs, keeps_input, chunk)
    drops = (logits[None] - removed).T  # (N, runs)
    sums = jnp.take_along_axis(a.reshape(n, -1)[None], subsets, axis=2).sum(axis=2).T  # (N, runs)
    return _similarity.pearson(sums, drops)


def faithfulness_correlation(model, x, target, attributions, *, key=None, subsets=None, n_runs: int = 100,
                             subset_size: int = 224, states_per_eval: int | None = None):
    """The Pearson correlation, over random subsets of input elements, between the sum of
    the subset's attributions and the drop of the target logit when the subset is set to
    the image's smallest value (Quantus ``FaithfulnessCorrelation``'s defaults: 100 runs of
    224 elements, its ``"black"`` baseline, logits).  Higher is better.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W, 3), or (N, H, W) / (N, H, W, 1) shared by the channels.
      key: a jax.random key for the subsets (:func:`random_subsets`); required unless
        ``subsets``.
      subsets: (n_runs, N, subset_size) element indices into each image flattened in NHWC
        order, instead of drawing them.
      n_runs, subset_size: subsets per image and elements per subset.
      states_per_eval: copies of the batch per forward pass (memory bound).

    Returns:
      (N,) correlations.

    References:
      Bhatt, Weller, Moura. Evaluating and Aggregating Feature-based Model Explanations
      (IJCAI 2020).
    """
    x, target = scoring.prepare(model, x, target)
    a = jnp.broadcast_to(_common.check_attributions(attributions, x=x), x.shape).astype(x.dtype)
    n_runs = _checks.check_positive_int(n_runs, "n_runs", minimum=2)
    n_features = int(np.prod(x.shape[1:]))
    subset_size = _checks.check_positive_int(subset_size, "subset_size")
    if subset_size > n_features:
        raise InputError(f"`subset_size` {subset_size} exceeds the {n_features} elements of an image")
    if subsets is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `subsets` is given")
        subsets = random_subsets(key, n_runs, x.shape[0], n_features, subset_size)
    subsets = jnp.asarray(subsets)
    if subsets.shape != (n_runs, x.shape[0], subset_size) or not jnp.issubdtype(subsets.dtype, jnp.integer):
        raise InputError(f"`subsets` must be integer indices of shape (n_runs, N, subset_size) = "
                         f"{(n_runs, x.shape[0], subset_size)}, got {subsets.dtype} {tuple(subsets.shape)}")
    if _checks.is_concrete(subsets) and (int(subsets.min()) < 0 or int(subsets.max()) >= n_features):
        raise InputError(f"`subsets` indices must lie in [0, {n_features})")
    chunk = _common.states_per_eval(states_per_eval, n_runs, x)
    return _faithfulness_correlation(model, x, target, a, subsets.astype(jnp.int32), n_runs, chunk)
