"""FullGrad (pytorch-grad-cam ``FullGrad``): the input-gradient map and every bias layer's
bias-gradient map, each channel min–max scaled and resized to the input, summed.

A bias layer is a convolution with a bias or a BatchNorm (its bias β − μ·γ/√(σ² + ε));
the model's architecture lists them (``model.architecture.bias_layers``).  All the
gradients come from one backward pass per chunk of images, and each layer's maps are
reduced to one (N, H, W) map inside the chunk: memory does not grow with the layers.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jaxviz import _chunks, scoring
from jaxviz.attribution import _cam
from jaxviz.errors import InputError
from jaxviz.interpolation import interpolate


def _resized(maps, size):
    """(N, h, w, C) → (N, H, W, C), pytorch-grad-cam's bilinear ``cv2.resize``."""
    return maps if maps.shape[1:3] == tuple(size) else interpolate(maps, size, "bilinear")


def _layer_maps(model, x, target, layers, summed: bool):
    """The package's per-layer maps at the input's size, (N, H, W, 3 + len(layers)) — the
    three channels of |x ⊙ ∇ₓy| and each layer's Σ_c |b_c · ∂y/∂a_c| — or, ``summed``,
    their sum (N, H, W).  Each channel is min–max scaled before it is resized and summed
    (the sum is taken before the resize: a resize is linear)."""
    size = x.shape[1:3]
    architecture = model.architecture
    _, grads, input_grads = scoring.gradient_pass(model, x, target, layers, with_input=True)
    maps = [_cam.minmax(jnp.abs(input_grads * x))]
    for bias, grad in zip(architecture.layer_biases(model.params, layers), grads):
        bias = bias.astype(grad.dtype)[None, None, None, :]
        maps.append(_resized(_cam.minmax(jnp.abs(bias * grad)).sum(axis=-1, keepdims=True), size))
    if summed:
        return sum(m.sum(axis=-1) for m in maps)
    return jnp.concatenate(maps, axis=-1)


@functools.partial(jax.jit, static_argnames=("layers", "eigen_smooth", "aug_smooth"))
def _fullgrad(model, x, target, layers, eigen_smooth, aug_smooth):
    def maps(images, targets):
        size = images.shape[1:3]
        if not eigen_smooth:
            return _cam.minmax(_chunks.map_chunks(
                functools.partial(_layer_maps, model, layers=layers, summed=True), images, targets))

        # the package's eigen_smooth: each map min–max scaled and shrunk 8×, projected on
        # the first principal component, scaled and resized back
        def shrunk(v, t):
            return _resized(_cam.minmax(_layer_maps(model, v, t, layers, summed=False)),
                            (size[0] // 8, size[1] // 8))

        projected = _cam.projection(_chunks.map_chunks(shrunk, images, targets))
        return _cam.minmax(_resized(_cam.minmax(projected)[..., None], size)[..., 0])

    if aug_smooth:
        return _cam.augmented_mean(maps, x, target)
    return maps(x, target)


def fullgrad(model, x, target, *, eigen_smooth: bool = False, aug_smooth: bool = False):
    """FullGrad saliency, as pytorch-grad-cam computes it.

    The map is min–max(M) with M = Σ_c mm(|x ⊙ ∇ₓy|_c) + Σ_layers resize(Σ_c mm(|b_c ·
    ∂y/∂a_c|)): a_c is channel c of a bias layer's output, b_c the bias that layer adds
    to it, mm a min–max scaling of one image's channel (÷ (max + 1e-7)) and resize the
    package's bilinear resize to the input.  The paper's sum of post-processed gradients
    (Srinivas & Fleuret, its ψ = absolute value, then scaled), over every convolution and
    BatchNorm bias of the network.

    Args:
      model: a :class:`jaxviz.Model` (its bias layers: ``model.architecture.bias_layers``;
        on your own model, each linen convolution that adds a bias and each linen
        BatchNorm, see :mod:`jaxviz.models.traced`).
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      eigen_smooth: the package's option: the 3 + L maps shrunk 8×, projected on their
        first principal component (its sign: the largest magnitude positive) and resized
        back.
      aug_smooth: the mean over pytorch-grad-cam's six test-time augmentations (horizontal
        flip × brightness 0.9, 1, 1.1).

    Returns:
      (N, H, W) maps in [0, 1].

    References:
      Srinivas, Fleuret. Full-gradient representation for neural network visualization
      (NeurIPS 2019).
    """
    layers = model.architecture.bias_layers
    if not layers:
        raise InputError(f"FullGrad needs the network's convolution and BatchNorm biases, and {model.architecture.name} "
                         "has none jaxviz can see (on your own model: a named convolution that adds a bias, or a "
                         "linen BatchNorm, over spatial maps)")
    x, target = scoring.prepare(model, x, target, layers=layers)
    if eigen_smooth and min(x.shape[1:3]) < 8:
        raise InputError(f"eigen_smooth shrinks the maps 8×: the images ({x.shape[1]}×{x.shape[2]}) need at least "
                         "8 pixels a side")
    return _fullgrad(model, x, target, layers, bool(eigen_smooth), bool(aug_smooth))
