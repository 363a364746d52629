"""Deletion (RISE): how fast the class probability falls as the most relevant pixels are
removed."""

from __future__ import annotations

from jaxviz.metrics import _causal

DEFAULT_STEP = 224


def deletion(model, x, target, attributions, *, step: int = DEFAULT_STEP, substrate="zeros",
             states_per_eval: int | None = None) -> _causal.CausalCurve:
    """The target's probability as pixels are set to the substrate, ``step`` at a time in
    the order of their attribution, most relevant first (Petsiuk et al.'s deletion metric,
    their ``CausalMetric(model, "del", step, torch.zeros_like)``).  Lower is better.

    Every step of every image goes through the network inside one compiled program,
    ``states_per_eval`` copies of the batch per forward pass.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) the classes whose probability is followed.  RISE follows each image's
        top class: pass ``model(x).argmax(-1)`` for that.
      attributions: (N, H, W) or (N, H, W, 1) one value per pixel (reduce a per-channel
        map first, e.g. ``a.sum(-1)``).  Equal values: the later pixel (row-major) goes
        first.
      step: pixels removed per step (RISE: 224 for 224×224 images, 224 steps).
      substrate: ``"zeros"`` (RISE's deletion; zero is the mean colour of normalised
        images), ``"blur"`` (RISE's insertion substrate, :func:`jaxviz.metrics.insertion`)
        or an array broadcastable to x.
      states_per_eval: copies of the batch per forward pass (memory bound); default from
        the image size.

    Returns:
      :class:`CausalCurve`: ``auc`` (N,) and ``probabilities`` (N, ⌈H·W/step⌉ + 1).

    References:
      Petsiuk, Das, Saenko. RISE: Randomized Input Sampling for Explanation of Black-box
      Models (BMVC 2018).
    """
    return _causal.causal_curve(model, x, target, attributions, insert=False, step=step, substrate=substrate,
                                states_per_eval=states_per_eval)
