"""Random logit (Sixt et al.; Quantus ``RandomLogit``): is the explanation of another class
different from the explanation of the target?"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.errors import InputError
from jaxviz.metrics import _common, similarity as _similarity


def other_classes(key, target, num_classes: int):
    """(N,) one class per image drawn uniformly from the classes other than its target
    (an index i into the others: i itself below the target, i + 1 from it on — how Quantus
    picks from the classes with the target removed)."""
    index = jax.random.randint(key, target.shape, 0, num_classes - 1)
    return jnp.where(index < target, index, index + 1)


@functools.partial(jax.jit, static_argnames=("method", "measure"))
def _random_logit(model, x, target, other, method, measure):
    maps = [_common.explanation_maps(method(model, x, t)) for t in (target, other)]
    return _similarity.MEASURES[measure](*maps)


def random_logit(model, x, target, method, *, key=None, other_targets=None, measure: str = "ssim"):
    """How alike each image's explanation of its target and of another, random class are
    (Quantus ``RandomLogit``).  An explanation that depends on the class gives low values.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      method: ``method(model, x, target) -> attributions`` (a function jit can hash);
        per-channel attributions are summed over the channels, and each map is divided by
        its largest magnitude.
      key: a jax.random key for the other classes (:func:`other_classes`); required unless
        ``other_targets``.
      other_targets: (N,) the other classes themselves.
      measure: ``"ssim"`` (Quantus' default; here on the 2-D maps, where Quantus flattens
        them), ``"spearman"``, ``"spearman_abs"`` or ``"pearson"``
        (:mod:`jaxviz.metrics.similarity`).

    Returns:
      (N,) similarities.

    References:
      Sixt, Granz, Landgraf. When Explanations Lie: Why Many Modified BP Attributions Fail
      (ICML 2020).
    """
    x, target = scoring.prepare(model, x, target)
    if not callable(method):
        raise _checks.InputTypeError(f"`method` must be a function (model, x, target) -> attributions, got {method!r}")
    _checks.check_choice(measure, "measure", tuple(_similarity.MEASURES))
    num_classes = model.architecture.num_classes
    if other_targets is None:
        if key is None:
            raise InputError("`key` (a jax.random key) is required unless `other_targets` is given")
        other = other_classes(key, target, num_classes)
    else:
        other = _checks.check_target(other_targets, x.shape[0], num_classes=num_classes, name="other_targets")
        if _checks.is_concrete(other) and _checks.is_concrete(target) and bool(np.any(np.asarray(other == target))):
            raise InputError("`other_targets` must differ from `target` for every image")
    return _random_logit(model, x, target, other, method, measure)
