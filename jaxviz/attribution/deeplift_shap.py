"""DeepLiftShap: DeepLift against every baseline of a distribution, averaged."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths
from jaxviz.attribution.deeplift import multipliers, shared_reference_start
from jaxviz.errors import InputError
from jaxviz.models.network import GUIDED_RULES


@functools.partial(jax.jit, static_argnames=("rule", "multiply_by_inputs", "shared_from"))
def _deeplift_shap(model, x, target, baselines, rule, multiply_by_inputs, shared_from=None):
    if shared_from is not None:  # each baseline the one reference of every image, in turn
        def against(reference):
            return multipliers(model, x, reference[None], target, rule, shared_from,
                               multiply_by_inputs=multiply_by_inputs)

        return jax.lax.map(against, baselines).mean(axis=0)
    n, b = x.shape[0], baselines.shape[0]
    inputs = jnp.repeat(x, b, axis=0)  # image i against baselines 0..B−1, then image i+1
    references = jnp.tile(baselines, (n, 1, 1, 1))
    attributions = multipliers(model, inputs, references, jnp.repeat(target, b), rule,
                               multiply_by_inputs=multiply_by_inputs)
    return attributions.reshape((n, b) + x.shape[1:]).mean(axis=1)


def deeplift_shap(model, x, target, *, baselines, rule: str = "modules", multiply_by_inputs: bool = True):
    """DeepLift of each image against each of B baselines, averaged over the baselines
    (Captum ``DeepLiftShap``), an approximation of SHAP values.

    All N·B pairs go through one compiled program, a few pairs at a time, each baseline
    as the one reference of all N images (:func:`jaxviz.deeplift`).  The rule is
    :func:`jaxviz.deeplift`'s.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      baselines: (B, H, W, 3) the baseline distribution (B ≥ 1; Captum asks for B ≥ 2).
      rule: ``"modules"`` (default) or ``"all"``.
      multiply_by_inputs: average (x − b)·m (default), or the multipliers m alone.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Lundberg, Lee. A Unified Approach to Interpreting Model Predictions (2017).
    """
    _checks.check_choice(rule, "rule", GUIDED_RULES)
    x, target = scoring.prepare(model, x, target)
    if baselines is None:
        raise InputError("`baselines` (B, H, W, 3), the distribution to explain against, is required")
    baselines = _paths.baseline_distribution(baselines, x)
    return _deeplift_shap(model, x, target, baselines, rule, bool(multiply_by_inputs),
                          shared_reference_start(model, rule, x.shape[1:]))
