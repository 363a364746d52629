"""RISE's causal metrics (deletion and insertion): the class probability as the pixels are
moved, most relevant first, from one image to another — every step of every image in one
compiled loop."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax

from jaxviz import _checks, scoring
from jaxviz.attribution import _perturbations
from jaxviz.metrics import _common


class CausalCurve(NamedTuple):
    """A deletion or insertion result.

    Attributes:
      auc: (N,) area under each image's curve, the steps spread evenly over [0, 1].
      probabilities: (N, steps + 1) the target's softmax probability before the first step
        and after each.
    """

    auc: jax.Array
    probabilities: jax.Array


@functools.partial(jax.jit, static_argnames=("step", "insert", "first", "chunk"))
def moving_curves(model, x, target, maps, substrate, step, insert, first, chunk):
    """(N, states) target probabilities as the values ``maps`` ranks — pixels for an
    (N, H, W, 1) map, elements for (N, H, W, C) — move ``step`` at a time, most relevant
    first, from x to the substrate (``insert``: from the substrate to x); the states from
    ``first`` moves on (0: the unchanged start included)."""
    n_states = -(-maps[0].size // step) + 1 - first
    ranks = _common.relevance_ranks(maps)[None]  # (1, N, H, W, C')

    def keeps_input(ids):  # state i has the first step·i values of the order moved
        moved = ranks < step * (ids + first)[:, None, None, None, None]
        return moved if insert else ~moved

    probabilities = _perturbations.mixture_scores(model, x, target, substrate, n_states, keeps_input, chunk,
                                                  score=scoring.batch_target_probabilities)
    return probabilities.T


def causal_curve(model, x, target, attributions, *, insert: bool, step, substrate, states_per_eval):
    """Deletion (``insert=False``) or insertion: checks the arguments, moves the pixels."""
    x, target = scoring.prepare(model, x, target)
    maps = _common.check_attributions(attributions, x=x, per_pixel=True).astype(x.dtype)
    step = _checks.check_positive_int(step, "step")
    substrate = _common.substrate_for(substrate, x)
    n_states = -(-(x.shape[1] * x.shape[2]) // step) + 1
    chunk = _common.states_per_eval(states_per_eval, n_states, x)
    curves = moving_curves(model, x, target, maps[..., None], substrate, step, bool(insert), 0, chunk)
    return _with_auc(curves)


@jax.jit
def _with_auc(curves):
    return CausalCurve(_common.trapezoid_auc(curves), curves)
