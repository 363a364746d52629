"""RandomCAM (pytorch-grad-cam's ``RandomCAM``): random channel weights, a baseline a
faithfulness metric should rank below every real explanation."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _cam
from jaxviz.errors import InputError


@functools.partial(jax.jit, static_argnames=("layers", "eigen_smooth", "resolution", "aug_smooth"))
def _random_cam(model, x, key, weights, layers, eigen_smooth, resolution, aug_smooth):
    def maps(images, _targets):
        activations = scoring.layer_outputs(model, images, layers)
        out = []
        for i, activation in enumerate(activations):
            w = weights[i] if weights is not None else jax.random.uniform(
                jax.random.fold_in(key, i), activation.shape[:1] + activation.shape[-1:], activation.dtype, -1, 1)
            out.append(_cam.channel_sum(w[:, None, None, :] * activation, eigen_smooth))
        return out

    target = jnp.zeros(x.shape[0], jnp.int32)
    if resolution == "layer":
        return jax.nn.relu(maps(x, target)[0])
    if not aug_smooth:
        return _cam.to_input(maps(x, target), x.shape[1:3])
    return _cam.augmented_mean(lambda images, targets: _cam.to_input(maps(images, targets), x.shape[1:3]), x, target)


def random_cam(model, x, target, *, key=None, weights=None, layer: str | Sequence[str] | None = None,
               eigen_smooth: bool = False, resolution: str = "layer", aug_smooth: bool = False):
    _checks.check_choice(resolution, "resolution", _cam.RESOLUTIONS)
    layers = _cam.check_layers(model, layer)
    if resolution == "layer" and (len(layers) > 1 or aug_smooth):
        raise InputError("several layers and aug_smooth give maps at the input's resolution: pass resolution='input'")
    x, target = scoring.prepare(model, x, target, layers=layers)
    if (key is None) == (weights is None):
        raise InputError("random_cam needs exactly one of `key` (weights drawn from it) and `weights`")
    if weights is not None:
        if aug_smooth:
            raise InputError("aug_smooth draws new weights for each augmentation: pass `key`, not `weights`")
        weights = tuple(weights) if isinstance(weights, (list, tuple)) else (weights,)
        shapes = jax.eval_shape(lambda: model.apply(model.params, x[:1], capture=layers))
        expected = [(x.shape[0], shapes[name].shape[-1]) for name in layers]
        if [tuple(np.shape(w)) for w in weights] != expected:
            raise InputError(f"`weights` must be one (N, C) array per layer, shapes {expected}, got "
                             f"{[tuple(np.shape(w)) for w in weights]}")
        weights = tuple(jnp.asarray(w, x.dtype) for w in weights)
    return _random_cam(model, x, key, weights, layers, bool(eigen_smooth), resolution, bool(aug_smooth))


random_cam.__doc__ = """RandomCAM: Σ_k w_k A_k with channel weights w drawn uniformly from [−1, 1),
    a new draw for each image and layer (and, with ``aug_smooth``, each augmentation, as
    the package draws on every forward pass).  A baseline for the metrics: it does not
    depend on ``target``.
""" + _cam.ARGS + """      key: a ``jax.random`` key; layer i's weights come from ``fold_in(key, i)``.
      weights: instead of ``key``, the weights: one (N, C) array per layer (C: its channels).

    References:
      Gildenblat and contributors. PyTorch library for CAM methods (pytorch-grad-cam, 2021).
"""
