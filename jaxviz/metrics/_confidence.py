"""pytorch-grad-cam's confidence metrics: the target's score when each image is multiplied
by its own map, against its score on the image."""

from __future__ import annotations

import functools

import jax

from jaxviz import _checks, scoring
from jaxviz.metrics import _common

SCORES = ("probability", "logit")


def score_function(score: str):
    """The per-image target score a metric follows: the softmax probability or the logit."""
    return scoring.batch_target_probabilities if score == "probability" else scoring.batch_target_logits


@functools.partial(jax.jit, static_argnames=("score",))
def _change(model, x, target, maps, score):
    evaluate = score_function(score)
    return evaluate(model, x * maps, target) - evaluate(model, x, target)


def confidence_change(model, x, target, maps, *, score: str = "probability"):
    """(N,) the target's score on ``x · map`` minus its score on x (pytorch-grad-cam
    ``CamMultImageConfidenceChange``); maps (N, H, W) or (N, H, W, 1), usually in [0, 1]
    at the input's size (a CAM with ``resolution="input"``)."""
    x, target = scoring.prepare(model, x, target)
    maps = _common.check_attributions(maps, x=x, per_pixel=True).astype(x.dtype)
    _checks.check_choice(score, "score", SCORES)
    return _change(model, x, target, maps[..., None], score)
