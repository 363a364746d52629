"""Insertion (RISE): how fast the class probability rises as the most relevant pixels are
put back into a blurred image."""

from __future__ import annotations

from jaxviz.metrics import _causal
from jaxviz.metrics.deletion import DEFAULT_STEP


def insertion(model, x, target, attributions, *, step: int = DEFAULT_STEP, substrate="blur",
              states_per_eval: int | None = None) -> _causal.CausalCurve:
    """The target's probability as the image's pixels replace the substrate's, ``step`` at
    a time in the order of their attribution, most relevant first (Petsiuk et al.'s
    insertion metric, their ``CausalMetric(model, "ins", step, blur)``).  Higher is better.

    Args:
      model, x, target, attributions, step, states_per_eval: as for
        :func:`jaxviz.metrics.deletion`.
      substrate: what the curve starts from: ``"blur"`` (RISE's: each channel convolved
        with scipy's Gaussian filter of an 11×11 impulse, σ = 5, zero-padded), ``"zeros"``
        or an array broadcastable to x.

    Returns:
      :class:`CausalCurve`: ``auc`` (N,) and ``probabilities`` (N, ⌈H·W/step⌉ + 1).

    References:
      Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of Black-box
      Models (BMVC 2018).
    """
    return _causal.causal_curve(model, x, target, attributions, insert=True, step=step, substrate=substrate,
                                states_per_eval=states_per_eval)
