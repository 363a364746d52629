"""Deconvolution (the deconvnet's backward pass) through the model's backward-rule switch."""

from __future__ import annotations

import functools

import jax

from jaxviz import _checks, scoring
from jaxviz.models.network import GUIDED_RULES


@functools.partial(jax.jit, static_argnames=("rule",))
def _deconvolution(model, x, target, rule, repeats):
    return scoring.per_image(lambda v, t: scoring.input_gradients(model, v, t, guided=("deconvolution", rule)),
                             repeats, x, target)


def deconvolution(model, x, target, *, rule: str = "modules"):
    """Input "gradients" with each ReLU's backward replaced by ``max(g, 0)``, whatever its
    input (Captum ``Deconvolution``).

    The activations reached are guided backprop's (:func:`jaxviz.guided_backprop`): by
    default the ``nn.ReLU`` modules, as Captum's hooks; ``rule="all"`` every ReLU-like
    activation (functional ReLUs, ReLU6, Hardswish), each passing ``max(g, 0)`` back.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      rule: ``"modules"`` (default) or ``"all"``.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Zeiler, Fergus. Visualizing and Understanding Convolutional Networks (2014).
    """
    _checks.check_choice(rule, "rule", GUIDED_RULES)
    x, target = scoring.prepare(model, x, target)
    return _deconvolution(model, x, target, rule, scoring.find_repeats(x, target))
