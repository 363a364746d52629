"""Gatys style transfer: the course's losses and its 200-iteration Adam loop, compiled.

Features are the model's multi-layer output: ``feats[i]`` is the output of ``features.i``
(NHWC).  Losses follow the course: content ``w·Σ(F − P)²``; Gram ``F Fᵀ/(C·H·W)``; style
``Σ_l w_l·Σ(G_l − A_l)²``; total variation ``w·(Σ(x[i+1,j] − x[i,j])² + Σ(x[i,j+1] − x[i,j])²)``
on the normalised image.
"""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jaxviz import _checks
from jaxviz.choices import STYLE_CONTENT_IMAGE, STYLE_IMAGE_SIZE, STYLE_PRESETS
from jaxviz.errors import InputError
from jaxviz.images import MEAN, STD
from jaxviz.synthesis._snapshots import Snapshots, check_snapshot_at

PRESETS = STYLE_PRESETS
CONTENT_IMAGE, IMAGE_SIZE = STYLE_CONTENT_IMAGE, STYLE_IMAGE_SIZE


def features(model, x, layers: Sequence[str | int]) -> dict:
    """``{layer: its output}``, in one forward pass (an integer i: the course's ``features.i``)."""
    names = {layer: _layer_name(model.architecture, layer, "layers") for layer in layers}
    outputs = model.apply(model.params, x, capture=tuple(dict.fromkeys(names.values())))
    return {layer: outputs[name] for layer, name in names.items()}


def content_loss(content_weight, current, original):
    """``w·Σ(current − original)²`` over all elements."""
    return content_weight * jnp.sum((current - original) ** 2)


def gram_matrix(feature, normalize: bool = True):
    """(N, H, W, C) → (N, C, C): ``F Fᵀ`` with F of shape (C, H·W), divided by C·H·W."""
    n, h, w, c = feature.shape
    gram = _gram(feature.reshape(n, h * w, c))
    return gram / (c * h * w) if normalize else gram


@jax.custom_vjp
def _gram(f):
    """(N, P, C) → (N, C, C) ``Fᵀ F``.  Both passes are plain row-major matmuls: XLA:CPU
    sends them to its fast dot kernels, where the einsum contracting over P and its
    gradient (laid out C × P, then transposed) were slower (benchmarks/results/design-notes.md)."""
    return jnp.matmul(jnp.swapaxes(f, 1, 2), f, precision=jax.lax.Precision.HIGHEST)


def _gram_fwd(f):
    return _gram(f), f


def _gram_bwd(f, g):
    return (jnp.matmul(f, g + jnp.swapaxes(g, 1, 2), precision=jax.lax.Precision.HIGHEST),)


_gram.defvjp(_gram_fwd, _gram_bwd)


def style_loss(feats, style_layers: Sequence[str], style_targets, style_weights):
    """``Σ_l w_l·Σ(G(feats[l]) − A_l)²``."""
    total = 0.0
    for layer, target, weight in zip(style_layers, style_targets, style_weights):
        total = total + weight * jnp.sum((gram_matrix(feats[layer]) - target) ** 2)
    return total


def tv_loss(img, tv_weight):
    """Total variation on the normalised image, summed over channels."""
    dh = img[:, 1:, :, :] - img[:, :-1, :, :]
    dw = img[:, :, 1:, :] - img[:, :, :-1, :]
    return tv_weight * (jnp.sum(dh * dh) + jnp.sum(dw * dw))


class StyleTransferResult(NamedTuple):
    images: jax.Array  # (N, H, W, 3)
    losses: jax.Array  # (num_iterations,) total loss before each step
    snapshots: jax.Array  # (S, N, H, W, 3)


def _layer_name(architecture, value, what):
    """A layer name; an integer i is the course's ``features.i`` (the architecture's i-th
    feature layer)."""
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        n_features = len(architecture.feature_layers)
        if not 0 <= value < n_features:
            raise InputError(f"`{what}` as an index must be in 0..{n_features - 1} "
                             f"(or name a layer of {architecture.name}), got {value!r}")
        return architecture.feature_layers[value]
    if not isinstance(value, str):
        raise InputError(f"`{what}` must be layer names, got {value!r}")
    return architecture.check_layers(value)[0]


def _check_layers(model, content_layer, style_layers, style_weights):
    architecture = model.architecture
    if content_layer is None or not style_layers:
        raise InputError(f"{architecture.name} has no style-transfer preset: pass `content_layer` and "
                         f"`style_layers` (layer names)")
    content_layer = _layer_name(architecture, content_layer, "content_layer")
    style_layers = tuple(_layer_name(architecture, s, "style_layers") for s in style_layers)
    if len(style_layers) != len(style_weights):
        raise InputError(
            f"`style_layers` ({len(style_layers)}) and `style_weights` ({len(style_weights)}) must have the same length"
        )
    return content_layer, style_layers


def style_targets(model, styles, style_layers, blend=None):
    """Gram targets of the style images; several styles are blended by ``blend`` weights.

    Args:
      styles: a list of (1, h, w, 3) normalised style images (sizes may differ), or one
        (N, h, w, 3) batch giving each content image its own style.
      blend: weights of the listed styles (normalised to sum 1); default equal weights.
    """
    if isinstance(styles, (list, tuple)):
        weights = np.ones(len(styles)) if blend is None else np.asarray(blend, np.float64)
        if weights.shape != (len(styles),) or (weights < 0).any() or weights.sum() <= 0:
            raise InputError(f"`blend` must be {len(styles)} non-negative weights, got {blend!r}")
        weights = weights / weights.sum()
        grams = [
            {l: gram_matrix(f) for l, f in features(model, _checks.check_images(s, name="style", architecture=model.architecture).astype(model.dtype), style_layers).items()}
            for s in styles
        ]
        return [sum(float(w) * g[l] for w, g in zip(weights, grams)) for l in style_layers]
    feats = features(model, styles, style_layers)
    return [gram_matrix(feats[l]) for l in style_layers]


@functools.partial(
    jax.jit,
    static_argnames=("content_layer", "style_layers", "num_iterations", "decay_at", "clamp_until", "snapshot_at"),
)
def _style_loop(model, init, content_target, targets, weights, content_layer, style_layers, num_iterations,
                learning_rate, decayed_lr, decay_at, clamp_until, snapshot_at):
    content_weight, style_weights, tv_weight = weights
    layers = tuple(sorted(set(style_layers) | {content_layer}))

    def loss_fn(img):
        feats = features(model, img, layers)
        return (content_loss(content_weight, feats[content_layer], content_target)
                + style_loss(feats, style_layers, targets, style_weights)
                + tv_loss(img, tv_weight))

    opt = optax.inject_hyperparams(optax.adam)(learning_rate=learning_rate)
    snapshots = Snapshots(snapshot_at, num_iterations)

    def body(t, state):
        img, opt_state, losses, snaps = state
        img = jnp.where(t < clamp_until, jnp.clip(img, -1.5, 1.5), img)
        loss, g = jax.value_and_grad(loss_fn)(img)
        # the CS231n reference starts a fresh Adam with the decayed rate at t == decay_at
        fresh = opt.init(img)
        fresh.hyperparams["learning_rate"] = jnp.asarray(decayed_lr, img.dtype)
        opt_state = jax.tree_util.tree_map(lambda a, b: jnp.where(t == decay_at, a, b), fresh, opt_state)
        updates, opt_state = opt.update(g, opt_state, img)
        img = optax.apply_updates(img, updates)
        losses = losses.at[t].set(loss)
        return img, opt_state, losses, snapshots.keep(snaps, t, img)

    state = (init, opt.init(init), jnp.zeros(num_iterations, init.dtype), snapshots.empty(init))
    img, _, losses, snaps = jax.lax.fori_loop(0, num_iterations, body, state)
    return StyleTransferResult(img, losses, snaps)


def style_transfer(
    model,
    content,
    style,
    *,
    content_layer: str | int | None = None,
    content_weight: float = 6e-2,
    style_layers: Sequence[str | int] | None = None,
    style_weights: Sequence[float] | None = None,
    tv_weight: float = 2e-2,
    init: str | jax.Array = "content",
    key=None,
    num_iterations: int = 200,
    learning_rate: float = 3.0,
    decayed_lr: float = 0.1,
    decay_at: int = 180,
    clamp_until: int = 190,
    blend: Sequence[float] | None = None,
    preserve_colors: bool = False,
    snapshot_at: Sequence[int] = (),
) -> StyleTransferResult:
    """Gatys style transfer, the course's loop as one compiled ``fori_loop``.

    Each iteration t: while t < ``clamp_until`` clamp the image to [−1.5, 1.5]; loss =
    content + style + TV; at t == ``decay_at`` a fresh Adam with ``decayed_lr``; Adam step.
    Style Gram targets and the content target are computed once, outside the loop.

    Args:
      model: a :class:`jaxviz.Model`.
      content: (N, H, W, 3) normalised content images.
      style: (N or 1, h, w, 3) normalised style images, or a list of (1, h, w, 3) style
        images of any sizes blended with ``blend`` weights.
      content_layer, style_layers: layer names; default: the architecture's preset (the
        course's ``features.3`` and ``features.1, .4, .6, .7`` on SqueezeNet, Gatys's
        ``conv4_2`` and ``conv1_1 … conv5_1`` on VGG).  An integer i means ``features.i``.
      style_weights: one per style layer; default: the preset's.
      init: ``"content"``, ``"noise"`` (uniform(0, 1), needs ``key``) or an array.
      preserve_colors: keep the content's colours — the result's luminance (Y of YIQ,
        from RGB pixels) with the content's chrominance (I, Q).
      snapshot_at: 1-based iterations after which to keep the image.

    Returns:
      :class:`StyleTransferResult` (images, per-iteration losses, snapshots).

    References:
      Gatys, Ecker, Bethge. Image Style Transfer Using CNNs (2016).
    """
    content = _checks.check_images(content, name="content", architecture=model.architecture).astype(model.dtype)
    architecture = model.architecture
    content_layer = architecture.style_content_layer if content_layer is None else content_layer
    style_layers = architecture.style_layers if style_layers is None else style_layers
    if style_weights is None:
        style_weights = architecture.style_weights
    content_layer, style_layers = _check_layers(model, content_layer, tuple(style_layers), tuple(style_weights))
    num_iterations = _checks.check_positive_int(num_iterations, "num_iterations")
    if not isinstance(style, (list, tuple)):
        style = _checks.check_images(style, name="style", architecture=model.architecture).astype(model.dtype)
        if style.shape[0] not in (1, content.shape[0]):
            raise InputError(f"`style` must hold 1 or {content.shape[0]} images, got {style.shape[0]}")
    targets = style_targets(model, style, style_layers, blend)
    targets = [jnp.broadcast_to(t, (content.shape[0],) + t.shape[1:]) for t in targets]
    content_target = features(model, content, (content_layer,))[content_layer]
    if isinstance(init, str):
        _checks.check_choice(init, "init", ("content", "noise"))
        if init == "noise":
            if key is None:
                raise InputError('`key` is required for init="noise"')
            start = jax.random.uniform(key, content.shape, content.dtype)
        else:
            start = content
    else:
        start = _checks.check_images(init, name="init", architecture=model.architecture).astype(model.dtype)
        if start.shape != content.shape:
            raise InputError(f"`init` must have the content's shape {tuple(content.shape)}, got {tuple(start.shape)}")
    snapshot_at = check_snapshot_at(snapshot_at, num_iterations)
    dtype = content.dtype
    weights = (jnp.asarray(content_weight, dtype), tuple(jnp.asarray(w, dtype) for w in style_weights),
               jnp.asarray(tv_weight, dtype))
    result = _style_loop(model, start, content_target, targets, weights, content_layer, style_layers,
                         num_iterations, jnp.asarray(learning_rate, dtype), jnp.asarray(decayed_lr, dtype),
                         int(decay_at), int(clamp_until), snapshot_at)
    if preserve_colors:
        result = result._replace(images=keep_colors(result.images, content))
    return result


_YIQ = np.array([[0.299, 0.587, 0.114], [0.595716, -0.274453, -0.321263], [0.211456, -0.522591, 0.311135]])


def keep_colors(stylised, content):
    """Luminance-only transfer: Y (YIQ) of ``stylised`` with I, Q of ``content`` (normalised in/out)."""
    mean = jnp.asarray(MEAN, stylised.dtype).reshape(1, 1, 1, 3)
    std = jnp.asarray(STD, stylised.dtype).reshape(1, 1, 1, 3)
    to_yiq = jnp.asarray(_YIQ, stylised.dtype)
    s = jnp.einsum("nhwc,dc->nhwd", stylised * std + mean, to_yiq)
    c = jnp.einsum("nhwc,dc->nhwd", content * std + mean, to_yiq)
    yiq = jnp.concatenate([s[..., :1], c[..., 1:]], axis=-1)
    rgb = jnp.einsum("nhwd,cd->nhwc", yiq, jnp.asarray(np.linalg.inv(_YIQ), stylised.dtype))
    return (jnp.clip(rgb, 0, 1) - mean) / std
