"""Guided backpropagation through the model's guided-ReLU switch (no hooks, no patching)."""

from __future__ import annotations

import functools

import jax

from jaxviz import _checks, scoring
from jaxviz.models.network import GUIDED_RULES


@functools.partial(jax.jit, static_argnames=("rule",))
def _guided_backprop(model, x, target, rule, repeats):
    return scoring.per_image(lambda v, t: scoring.input_gradients(model, v, t, guided=rule), repeats, x, target)


def guided_backprop(model, x, target, *, rule: str = "modules"):
    """Input gradients with the ReLUs' backward replaced by ``1[x>0]·max(g, 0)``.

    Captum ``GuidedBackprop`` equivalent.  Captum overrides the backward pass of
    ``nn.ReLU`` modules only, at every call (ResNet's one module per block, called twice,
    included: measured equal); not ``ReLU6`` (MobileNetV2), ``Hardswish`` (MobileNetV3) or
    a functional ``F.relu`` (DenseNet after its features, every ReLU of GoogLeNet, where
    Captum's result is the plain gradient).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      rule: ``"modules"`` (default): Captum's, the ``nn.ReLU`` modules.  ``"all"``: the
        textbook rule, every ReLU-like activation guided, its backward ``max(f'(x)·g, 0)``
        (functional ReLUs, ReLU6, Hardswish; Hardsigmoid gates are left alone).

    Returns:
      (N, H, W, 3) attributions.

    Caution: guided backprop fails the sanity check of Adebayo et al. (2018): with the
    logits' layer randomised its maps barely change (Spearman of |map| 0.96 on pretrained
    SqueezeNet 1.1, 1.00 on MobileNetV2 with ``rule="all"``, where saliency keeps 0.64
    and 0.57; tests/test_sanity_checks.py, :func:`jaxviz.metrics.mprt`).  They
    show the image's edges more than what the network uses.

    References:
      Springenberg et al. Striving for Simplicity: The All Convolutional Net (2015).
      Adebayo et al. Sanity Checks for Saliency Maps (NeurIPS 2018).
    """
    _checks.check_choice(rule, "rule", GUIDED_RULES)
    x, target = scoring.prepare(model, x, target)
    return _guided_backprop(model, x, target, rule, scoring.find_repeats(x, target))
