"""FinerCAM (pytorch-grad-cam ``FinerCAM``): GradCAM of the target's logit against the
classes the model finds most similar to it, each weighted by its probability."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import jax
import jax.numpy as jnp

from jaxviz import _checks
from jaxviz.attribution import _cam, gradcam
from jaxviz.errors import InputError


@dataclass(frozen=True)
class FinerScore:
    """``FinerWeightedTarget``: Σ_c p_c (y_t − α y_c) / (Σ_c p_c + 1e-9) over the classes c
    at ``ranks`` of |y − y_t| (rank 0: the target itself); p = softmax(y), differentiated
    as the package does, the choice of classes not."""

    alpha: float
    ranks: tuple[int, ...]

    def __call__(self, logits, target):
        y_t = jnp.take_along_axis(logits, target[:, None], axis=1)
        distance = jnp.abs(jax.lax.stop_gradient(logits - y_t))
        similar = jnp.argsort(distance, axis=1, stable=True)[:, jnp.asarray(self.ranks)]
        weights = jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), similar, axis=1)
        differences = y_t - self.alpha * jnp.take_along_axis(logits, similar, axis=1)
        return (weights * differences).sum(axis=1) / (weights.sum(axis=1) + 1e-9)


def finercam(model, x, target, *, layer: str | Sequence[str] | None = None, alpha: float = 1.0,
             comparison_categories: Sequence[int] = (1, 2, 3), eigen_smooth: bool = False,
             resolution: str = "layer", aug_smooth: bool = False):
    ranks = tuple(_checks.check_positive_int(r, "comparison_categories", minimum=0)
                  for r in comparison_categories)
    ranks = tuple(r for r in ranks if r < model.architecture.num_classes)
    if not ranks:
        raise InputError("`comparison_categories` needs at least one rank below the number of classes")
    alpha = float(alpha)
    if not math.isfinite(alpha):
        raise InputError(f"`alpha` must be finite, got {alpha}")
    return _cam.run(model, x, target, _cam.gradient_rule(gradcam._rule), layer=layer, eigen_smooth=eigen_smooth,
                    resolution=resolution, aug_smooth=aug_smooth, score=FinerScore(alpha, ranks))


finercam.__doc__ = """FinerCAM: GradCAM of the score Σ_c p_c (y_t − α y_c) / (Σ_c p_c + 1e-9), c the classes
    whose logits are nearest the target's (by rank: ``comparison_categories``).

    With ``alpha = 0`` it is GradCAM of y_t (up to the weights' normalisation); larger
    ``alpha`` keeps the evidence that tells the target from its look-alikes.  The ranks are
    taken from |y − y_t| sorted ascending (rank 0 is the target itself); ranks past the
    number of classes are dropped, as in the package.
""" + _cam.ARGS + """      alpha: how much of the similar classes' logits is subtracted (default 1).
      comparison_categories: ranks of the similar classes (default 1, 2, 3).

    References:
      Zhang et al. Finer-CAM: spotting the difference reveals finer details for visual
      explanation (CVPR 2025).
    """
