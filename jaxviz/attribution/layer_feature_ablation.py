"""Layer Feature Ablation (Captum ``LayerFeatureAblation``): groups of a layer's units replaced by a baseline."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.errors import InputError


@functools.partial(jax.jit, static_argnames=("layer", "n_features", "per_eval"))
def _layer_feature_ablation(model, x, target, mask, baseline, layer, n_features, per_eval):
    (outputs,) = scoring.layer_outputs(model, x, (layer,))
    initial = scoring.batch_target_logits(model, x, target)
    ids = jnp.arange(-(-n_features // per_eval) * per_eval).reshape(-1, per_eval)  # ids ≥ n_features: no unit

    def ablated_scores(group):  # (p,) feature ids → (p, N) target scores with each feature ablated
        ablated = jnp.where(mask[None] == group.reshape((-1,) + (1,) * mask.ndim), baseline, outputs[None])
        p = group.shape[0]
        tiled = jnp.tile(x, (p,) + (1,) * (x.ndim - 1))
        # from the layer on: where it cuts the network, nothing before it is evaluated again
        scores, _ = scoring.target_logits(model, tiled, scoring.repeat_targets(target, p),
                                          replace={layer: ablated.reshape((p * x.shape[0],) + outputs.shape[1:])})
        return scores.reshape(p, x.shape[0])

    scores = jax.lax.map(ablated_scores, ids).reshape(-1, x.shape[0])[:n_features]  # (F, N)
    differences = initial[None] - scores
    flat = mask.reshape(mask.shape[0], -1)
    return jnp.take_along_axis(differences.T, flat, axis=1).reshape(mask.shape)


def layer_feature_ablation(model, x, target, *, layer: str | None = None, layer_mask=None, layer_baselines=0.0,
                           perturbations_per_eval: int = 16):
    """Each group of ``layer``'s units replaced by a baseline value: the drop of the target
    score, given to every unit of the group (Captum ``LayerFeatureAblation``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: torchvision module path; default: the model's last convolutional block.
      layer_mask: integer feature ids 0…F−1 broadcastable to the layer's output in PyTorch's
        layout ((N or 1, C, H, W) or (N or 1, F)), e.g. one id per channel (1, C, 1, 1);
        ``None``: every unit alone (one forward pass per unit).
      layer_baselines: the value an ablated unit takes (default 0).
      perturbations_per_eval: features ablated per forward pass (memory bound).

    Returns:
      layer-shaped (N, h, w, c) attributions.

    References:
      Zeiler, Fergus. Visualizing and Understanding Convolutional Networks (2014).
    """
    _checks.check_positive_int(perturbations_per_eval, "perturbations_per_eval")
    layer = model.architecture.default_layer if layer is None else layer
    x, target = scoring.prepare(model, x, target, layers=(layer,))
    shape = jax.eval_shape(lambda v: model.apply(model.params, v, capture=(layer,)), x)[layer].shape
    torch_shape = (shape[0], shape[-1]) + tuple(shape[1:-1])
    if layer_mask is None:
        mask = np.broadcast_to(np.arange(int(np.prod(shape[1:]))).reshape(shape[1:]), shape)
    else:
        mask = np.asarray(layer_mask)
        if not np.issubdtype(mask.dtype, np.integer) or mask.ndim != len(shape):
            raise InputError(f"`layer_mask` must hold integer ids with {len(shape)} dimensions, broadcastable to "
                             f"{layer}'s output {torch_shape} (PyTorch's layout), got {mask.dtype} {mask.shape}")
        try:
            mask = np.broadcast_to(mask, torch_shape)
        except ValueError:
            raise InputError(f"`layer_mask` of shape {np.shape(layer_mask)} does not broadcast to {layer}'s "
                             f"output {torch_shape} (PyTorch's layout)") from None
        if mask.min() < 0:
            raise InputError("`layer_mask` ids must be >= 0")
        mask = np.moveaxis(mask, 1, -1)  # NCHW → NHWC
    n_features = int(mask.max()) + 1
    per_eval = min(int(perturbations_per_eval), n_features)
    return _layer_feature_ablation(model, x, target, jnp.asarray(mask, jnp.int32),
                                   jnp.asarray(layer_baselines, x.dtype), layer, n_features, per_eval)
