"""Layer-wise relevance propagation through the model's backward-rule switch (zennit's rules)."""

from __future__ import annotations

import functools

import jax
import numpy as np

from jaxviz import _checks, images, scoring
from jaxviz.errors import InputError
from jaxviz.models import relevance


@functools.partial(jax.jit, static_argnames=("composite",))
def _lrp(model, x, target, composite, repeats):
    def body(x, target):
        relevance_ = scoring.input_gradients(model, x, target, guided=("lrp", composite))
        if composite.scale_by_output:  # Captum's: from the target logit, not from 1
            relevance_ = relevance_ * scoring.batch_target_logits(model, x, target)[:, None, None, None]
        return relevance_

    return scoring.per_image(body, repeats, x, target)


def composite_named(name: str) -> relevance.Composite:
    """One of :data:`jaxviz.models.relevance.COMPOSITES` with zennit's defaults;
    ``epsilon_gamma_box``'s bounds are the range of images normalised by
    :func:`jaxviz.preprocess` (pixel values 0 and 1)."""
    _checks.check_choice(name, "composite", relevance.COMPOSITES)
    if name == "epsilon_gamma_box":
        return relevance.epsilon_gamma_box(low=-images.MEAN / images.STD, high=(1 - images.MEAN) / images.STD)
    return relevance.COMPOSITES[name]()


def check_composite(composite, x) -> relevance.Composite:
    """A composite by name or as given, checked; zbox's bounds against the channels of x."""
    channels = np.shape(x)[-1] if np.ndim(x) else 3
    if isinstance(composite, str):
        composite = composite_named(composite)
    elif not isinstance(composite, relevance.Composite):
        raise InputError(f"`composite` must be a name in {list(relevance.COMPOSITES)} or a "
                         f"jaxviz.models.relevance.Composite, got {type(composite).__name__}")
    for rule in (composite.conv, composite.linear, composite.first, *(r for _, r in composite.layers)):
        if rule is not None and rule.name == "zbox" and len(rule.low) not in (1, channels):
            raise InputError(f"zbox's bounds have {len(rule.low)} values; the images have {channels} channels")
    return composite


def lrp(model, x, target, *, composite: str | relevance.Composite = "epsilon_plus"):
    """Layer-wise relevance propagation (zennit's ``Gradient`` attributor with a composite;
    Captum's ``LRP`` with ``composite="captum"``).

    The target's relevance, 1 at each image's target logit, is sent back layer by layer:
    each convolution and linear layer divides it among its inputs by the composite's rule,
    activation modules (and BatchNorms not merged) pass it on, average pools and residual
    sums share it in proportion to their inputs, max-pools send it to their maximum.  BatchNorms that read a convolution's
    output are merged into it first, as zennit's canonizers do (see
    :mod:`jaxviz.models.relevance`).  The relevance sums to about 1 per image (exactly, up to
    the stabilisers and biases, for the conserving rules).

    Args:
      model: a :class:`jaxviz.Model`: a jaxviz architecture, or your own network (see
        :mod:`jaxviz.models.traced` for which of its operations take the rules).
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices (or one int for all).
      composite: a name of :data:`jaxviz.models.relevance.COMPOSITES` — zennit's
        ``"epsilon_plus"`` (default), ``"epsilon_plus_flat"``, ``"epsilon_gamma_box"``,
        ``"epsilon_alpha2_beta1"``, ``"epsilon_alpha2_beta1_flat"``, or ``"captum"``
        (Captum ``LRP``'s default rules, relevance starting from the logit) — or a
        :class:`~jaxviz.models.relevance.Composite` (any rule per layer kind or per layer
        name, the canonizers on or off).

    Returns:
      (N, H, W, 3) relevance.

    References:
      Bach et al. On Pixel-Wise Explanations for Non-Linear Classifier Decisions by
      Layer-Wise Relevance Propagation (2015); Montavon et al. Layer-Wise Relevance
      Propagation: An Overview (2019); Anders et al. Software for Dataset-wide XAI: From
      Local Explanations to Global Insights with Zennit, CoRelAy, and ViRelAy (2021).
    """
    composite = check_composite(composite, x)
    x, target = scoring.prepare(model, x, target, layers=tuple(name for name, _ in composite.layers))
    return _lrp(model, x, target, composite, scoring.find_repeats(x, target))
