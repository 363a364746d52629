"""DeepLift at a layer (Captum ``LayerDeepLift``): the layer's output difference times its multipliers."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _checks, _chunks, scoring
from jaxviz.attribution import _paths
from jaxviz.models.network import GUIDED_RULES


@functools.partial(jax.jit, static_argnames=("layer", "rule", "multiply_by_inputs"))
def _layer_deeplift(model, x, target, baselines, layer, rule, multiply_by_inputs):
    def pair(v, r, t):
        # each image beside its reference in one batch, the layer's multipliers of the input half
        activations, grads = scoring.layer_gradients_and_eval(model, jnp.concatenate([v, r]),
                                                              scoring.repeat_targets(t, 2), layer,
                                                              guided=("deeplift", rule), chunk=2 * v.shape[0])
        n = v.shape[0]
        return (activations[:n] - activations[n:]) * grads[:n] if multiply_by_inputs else grads[:n]

    pairs = max(1, _chunks.chunk_size(2 * x.shape[0], *x.shape[1:3]) // 2)
    return _chunks.map_chunks(pair, x, baselines, target, chunk=pairs)


def layer_deeplift(model, x, target, *, layer: str | None = None, baselines=None, rule: str = "modules",
                   multiply_by_inputs: bool = True):
    """DeepLift (rescale rule) at ``layer``: (y(x) − y(b)) times the multipliers of the
    target score with respect to the layer's output (Captum ``LayerDeepLift``); the rules
    are :func:`jaxviz.deeplift`'s.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      baselines, rule: as :func:`jaxviz.deeplift`.
      multiply_by_inputs: ``False`` returns the layer's multipliers alone.

    Returns:
      layer-shaped attributions, (N, h, w, c) or (N, F).

    References:
      Shrikumar, Greenside, Kundaje. Learning Important Features Through Propagating
      Activation Differences (2017).
    """
    _checks.check_choice(rule, "rule", GUIDED_RULES)
    layer = model.architecture.default_layer if layer is None else layer
    x, target = scoring.prepare(model, x, target, layers=(layer,))
    baselines = _paths.broadcast_baselines(baselines, x)
    return _layer_deeplift(model, x, target, baselines, layer, rule, bool(multiply_by_inputs))
