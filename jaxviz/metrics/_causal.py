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


@functools.partial(jax.jit, static_argnames=("step", "insert", "chunk"))
def _causal_curve(model, x, target, maps, substrate, step, insert, chunk):
    n, h, w, _ = x.shape
    n_states = -(-(h * w) // step) + 1
    ranks = _common.pixel_ranks(maps)[None, ..., None]  # (1, N, H, W, 1)

    def keeps_input(ids):  # state i has the first step·i pixels of the order moved
        moved = ranks < step * ids[:, None, None, None, None]
        return moved if insert else ~moved

    probabilities = _perturbations.mixture_scores(model, x, target, substrate, n_states, keeps_input, chunk,
                                                  score=scoring.batch_target_probabilities)
    curves = probabilities.T
    return CausalCurve(_common.trapezoid_auc(curves), curves)


def causal_curve(model, x, target, attributions, *, insert: bool, step, substrate, states_per_eval):
    """Checks the arguments and runs :func:`_causal_curve` (deletion: ``insert=False``)."""
    x, target = scoring.prepare(model, x, target)
    maps = _common.check_attributions(attributions, x=x, per_pixel=True).astype(x.dtype)
    step = _checks.check_positive_int(step, "step")
    substrate = _common.substrate_for(substrate, x)
    n_states = -(-(x.shape[1] * x.shape[2]) // step) + 1
    chunk = _common.states_per_eval(states_per_eval, n_states, x)
    return _causal_curve(model, x, target, maps, substrate, step, bool(insert), chunk)
