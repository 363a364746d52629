"""pytorch-grad-cam's class activation maps, written once.

A CAM is a rule that turns a layer's output A (N, h, w, C) and the target score's
gradient there G into a map (N, h, w): a channel weighting (GradCAM, GradCAM++, XGradCAM,
ScoreCAM: Σ_k w_k A_k) or an elementwise one (HiResCAM, LayerCAM, …).  Each CAM module
declares its rule; this module evaluates it at one or several layers from one compiled
forward and backward pass, and gives the map in one of two conventions:

- ``resolution="layer"``: ReLU of the map at the layer's resolution (the course's GradCAM);
- ``resolution="input"``: the package's output: per layer ReLU, min–max scaled and resized
  bilinearly to the input (``cv2.resize``, half-pixel centres), then averaged over the
  layers, ReLU'd and min–max scaled again; (N, H, W) in [0, 1].

``eigen_smooth`` replaces the channel sum by the projection on the first principal
component (``get_2d_projection``, its sign made deterministic as in
``get_2d_projection_with_sign_correction``: :func:`projection`); ``aug_smooth`` averages the input-resolution maps over
the package's test-time augmentations (horizontal flip × brightness 0.9, 1, 1.1).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Callable

import jax
import jax.numpy as jnp

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths
from jaxviz.choices import CAM_RESOLUTIONS as RESOLUTIONS
from jaxviz.errors import InputError
from jaxviz.interpolation import interpolate

# tta.Compose([HorizontalFlip(), Multiply(factors=[0.9, 1, 1.1])]): the product of the two
AUGMENTATIONS = tuple((flip, factor) for flip in (False, True) for factor in (0.9, 1.0, 1.1))


def projection(maps):
    """(N, h, w, C) → (N, h, w): each image's centred (h·w, C) matrix projected on its first
    right singular vector, as ``get_2d_projection``, with the sign that makes the largest
    magnitude positive (``get_2d_projection_with_sign_correction``): LAPACK's sign is
    arbitrary and differs between machines."""
    n, h, w, c = maps.shape
    flat = maps.reshape(n, h * w, c)
    flat = jnp.where(jnp.isnan(flat), 0.0, flat)
    centred = flat - flat.mean(axis=1, keepdims=True)
    # one image per LAPACK call: a batched call blocks a thread of XLA's pool until its
    # pieces are done, and two at once (several layers) can deadlock a 2-core pool
    first = jax.lax.map(lambda m: jnp.linalg.svd(m, full_matrices=False)[2][0], centred)
    projected = jnp.einsum("npc,nc->np", centred, first)
    flip = jnp.abs(projected.min(axis=1)) > jnp.abs(projected.max(axis=1))
    return jnp.where(flip[:, None], -projected, projected).reshape(n, h, w)


def channel_sum(maps, eigen_smooth: bool):
    """(N, h, w, C) → (N, h, w): the sum over channels, or with ``eigen_smooth`` the
    first-component projection."""
    return projection(maps) if eigen_smooth else maps.sum(axis=-1)


def weighted(channel_weights: Callable) -> Callable:
    """A CAM rule from a channel weighting ``(A, G) → (N, C)``: Σ_k w_k A_k."""

    def rule(activation, grads, eigen_smooth):
        weights = channel_weights(activation, grads)
        return channel_sum(weights[:, None, None, :] * activation, eigen_smooth)

    return rule


def per_channel(evaluate, channels: int, images: int, batch_size: int):
    """(N, C) scores of every image's C perturbed copies: ``evaluate((k,) channel ids)`` →
    (k, N) scores, called in one ``lax.map`` with k = max(1, ``batch_size`` // N), so that
    about ``batch_size`` copies go through the network per pass."""
    ids = _paths.split_chunks(jnp.arange(channels), max(1, batch_size // images), fill=0)
    return jax.lax.map(evaluate, ids).reshape(-1, images)[:channels].T


def minmax(maps):
    """Each map shifted to 0 and divided by 1e-7 + its maximum (``scale_cam_image``)."""
    maps = maps - maps.min(axis=(1, 2), keepdims=True)
    return maps / (1e-7 + maps.max(axis=(1, 2), keepdims=True))


def to_input(maps: Sequence, size: tuple[int, int]):
    """The package's convention: per-layer maps (ReLU'd, min–max, bilinear to ``size``)
    averaged, ReLU'd and min–max scaled; (N, H, W)."""
    resized = [interpolate(minmax(jax.nn.relu(m))[..., None], size, "bilinear")[..., 0] for m in maps]
    return minmax(jax.nn.relu(jnp.mean(jnp.stack(resized), axis=0)))


@functools.partial(jax.jit, static_argnames=("rule", "layers", "gradients", "eigen_smooth", "resolution", "aug_smooth",
                                             "rule_options", "score"))
def _evaluate(model, x, target, rule, layers, gradients, eigen_smooth, resolution, aug_smooth, rule_options, score,
              repeats):
    body = functools.partial(_cams, model, rule=rule, layers=layers, gradients=gradients, eigen_smooth=eigen_smooth,
                             resolution=resolution, aug_smooth=aug_smooth, rule_options=rule_options, score=score)
    return scoring.per_image(body, repeats, x, target)


def _cams(model, x, target, *, rule, layers, gradients, eigen_smooth, resolution, aug_smooth, rule_options, score):
    def maps(images, targets):
        if gradients:
            activations, grads = scoring.layers_gradients_and_eval(model, images, targets, layers, score=score)
        else:
            activations = scoring.layer_outputs(model, images, layers)
            grads = (None,) * len(layers)
        return [rule(model, images, targets, name, a, g, eigen_smooth, *rule_options)
                for name, a, g in zip(layers, activations, grads)]

    if resolution == "layer":
        return jax.nn.relu(maps(x, target)[0])
    if not aug_smooth:
        return to_input(maps(x, target), x.shape[1:3])
    return augmented_mean(lambda images, targets: to_input(maps(images, targets), x.shape[1:3]), x, target)


def augmented_mean(maps: Callable, x, target):
    """The mean over :data:`AUGMENTATIONS` of ``maps(images, targets)`` → (N, H, W) maps at
    the input's resolution, each flipped back (``aug_smooth``); one call on all six."""
    augmented = jnp.concatenate([factor * (x[:, :, ::-1] if flip else x) for flip, factor in AUGMENTATIONS])
    cams = maps(augmented, jnp.tile(target, len(AUGMENTATIONS))).reshape((len(AUGMENTATIONS),) + x.shape[:3])
    cams = jnp.stack([cam[:, :, ::-1] if flip else cam for cam, (flip, _) in zip(cams, AUGMENTATIONS)])
    return cams.mean(axis=0)


ARGS = """
    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      layer: a layer name (torchvision module path), or several for ``resolution="input"``;
        default: the model's last convolutional block.
      eigen_smooth: the first principal component of the weighted activations instead of
        their sum over channels (its sign: the largest magnitude positive).
      resolution: ``"layer"``: (N, h, w) ReLU'd map at the layer's resolution; ``"input"``:
        (N, H, W) in [0, 1], pytorch-grad-cam's output (per-layer min–max, bilinear resize,
        mean over layers, min–max).
      aug_smooth: with ``resolution="input"``, the mean over pytorch-grad-cam's six test-time
        augmentations (horizontal flip × brightness 0.9, 1, 1.1).
"""


def check_layers(model, layer) -> tuple[str, ...]:
    """``layer`` as a tuple of layer names (default: the model's default layer)."""
    if layer is None:
        return (model.architecture.default_layer,)
    if isinstance(layer, str):
        return (layer,)
    layers = tuple(layer)
    if not layers or not all(isinstance(name, str) for name in layers):
        raise InputError(f"`layer` must be a layer name or a non-empty sequence of them, got {layer!r}")
    return layers


def run(model, x, target, rule: Callable, *, layer, eigen_smooth: bool, resolution: str, aug_smooth: bool,
        gradients: bool = True, rule_options: tuple = (), score=None):
    """Checks the arguments and evaluates ``rule(model, x, target, layer, A, G, eigen_smooth,
    *rule_options)`` at each layer in one compiled program (``rule_options``: hashable,
    static); G is the gradient of ``score`` (:func:`jaxviz.scoring.layer_scores`, hashable;
    default each image's target logit)."""
    _checks.check_choice(resolution, "resolution", RESOLUTIONS)
    layers = check_layers(model, layer)
    if resolution == "layer" and (len(layers) > 1 or aug_smooth):
        raise InputError("several layers and aug_smooth give maps at the input's resolution: pass resolution='input'")
    x, target = scoring.prepare(model, x, target, layers=layers)
    return _evaluate(model, x, target, rule, layers, gradients, bool(eigen_smooth), resolution, bool(aug_smooth),
                     tuple(rule_options), score, scoring.find_repeats(x, target))


def cam_method(rule: Callable, *, name: str, doc: str, gradients: bool = True) -> Callable:
    """The public function of a CAM with the rule ``rule(model, x, target, layer, A, G,
    eigen_smooth)`` → (N, h, w): ``name(model, x, target, *, layer=None, eigen_smooth=False,
    resolution="layer", aug_smooth=False)``, documented by ``doc`` followed by :data:`ARGS`."""

    def cam(model, x, target, *, layer: str | Sequence[str] | None = None, eigen_smooth: bool = False,
            resolution: str = "layer", aug_smooth: bool = False):
        return run(model, x, target, rule, layer=layer, eigen_smooth=eigen_smooth, resolution=resolution,
                   aug_smooth=aug_smooth, gradients=gradients)

    cam.__name__ = cam.__qualname__ = name
    cam.__doc__ = doc.rstrip() + "\n" + ARGS
    return cam


def perturbation_method(rule: Callable, *, name: str, doc: str, batch_size: int, what: str) -> Callable:
    """The public function of a CAM that scores perturbed copies of each image (ScoreCAM,
    AblationCAM): :func:`cam_method`'s options and ``batch_size``, the copies per forward
    pass, given to ``rule`` after ``eigen_smooth``."""

    def cam(model, x, target, *, layer: str | Sequence[str] | None = None, eigen_smooth: bool = False,
            resolution: str = "layer", aug_smooth: bool = False, batch_size: int = batch_size):
        batch_size = _checks.check_positive_int(batch_size, "batch_size")
        return run(model, x, target, rule, layer=layer, eigen_smooth=eigen_smooth, resolution=resolution,
                   aug_smooth=aug_smooth, gradients=False, rule_options=(batch_size,))

    cam.__name__ = cam.__qualname__ = name
    cam.__doc__ = doc.rstrip() + "\n" + ARGS + f"      batch_size: {what} per forward pass (memory bound).\n"
    return cam


def gradient_rule(rule: Callable) -> Callable:
    """A rule of (A, G, eigen_smooth) alone, as most CAMs' are."""

    @functools.wraps(rule)
    def full(model, x, target, layer, activation, grads, eigen_smooth):
        return rule(activation, grads, eigen_smooth)

    return full
