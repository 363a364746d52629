"""Class-model visualisation (the course's regularised gradient ascent) as one compiled loop."""

from __future__ import annotations

import functools
from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _chunks, _deprecation, scoring
from jaxviz.errors import InputError
from jaxviz.images import pixel_bounds
from jaxviz.synthesis._snapshots import Snapshots, check_snapshot_at


class ClassVisualizationResult(NamedTuple):
    images: jax.Array  # (K, H, W, 3) one image per target
    snapshots: jax.Array  # (S, K, H, W, 3) the images after the requested iterations


ClassVisualization = ClassVisualizationResult  # deprecated name, kept for one release


@functools.cache
def gaussian_taps(sigma: float, truncate: float = 4.0) -> np.ndarray:
    """scipy ``gaussian_filter1d``'s kernel: radius ``int(truncate·σ + ½)``, normalised."""
    radius = int(truncate * sigma + 0.5)
    offsets = np.arange(-radius, radius + 1, dtype=np.float64)
    taps = np.exp(-0.5 * offsets**2 / sigma**2)
    return taps / taps.sum()


def gaussian_blur(x, sigma: float = 0.5):
    """scipy ``gaussian_filter1d`` along H, then W, mode "reflect" (edge sample repeated)."""
    taps = gaussian_taps(sigma)
    r = len(taps) // 2
    for axis in (1, 2):
        pad = [(0, 0)] * x.ndim
        pad[axis] = (r, r)
        padded = jnp.pad(x, pad, mode="symmetric")  # numpy "symmetric" == scipy "reflect"
        size = x.shape[axis]
        x = sum(
            float(w) * jax.lax.slice_in_dim(padded, k, k + size, axis=axis) for k, w in enumerate(taps)
        )
    return x


def _roll(images, offsets):
    """Rolls each image by its own (oy, ox) on (H, W), like the course's ``jitter``."""
    return jax.vmap(lambda img, o: jnp.roll(img, (o[0], o[1]), axis=(0, 1)))(images, offsets)


@functools.partial(
    jax.jit, static_argnames=("num_iterations", "blur_every", "blur_sigma", "snapshot_at")
)
def _class_visualization(model, target, init, jitter, l2_reg, learning_rate, num_iterations, blur_every,
                         blur_sigma, snapshot_at):
    low, high = pixel_bounds(init.dtype)
    snapshots = Snapshots(snapshot_at, num_iterations)

    def gradient(img, goal):  # of each image's regularised score
        def objective(v):
            scores = scoring.target_logits(model, v, goal)[0]
            return jnp.sum(scores - l2_reg * jnp.sum(v * v, axis=(1, 2, 3)))

        return jax.grad(objective)(img)

    def body(t, state):
        img, snaps = state
        offsets = jitter[t]
        img = _roll(img, offsets)
        g = _chunks.map_chunks(gradient, img, target)
        img = img + learning_rate * g / jnp.sqrt(jnp.sum(g * g, axis=(1, 2, 3), keepdims=True))
        img = _roll(img, -offsets)
        img = jnp.clip(img, low, high)
        img = jax.lax.cond(t % blur_every == 0, lambda v: gaussian_blur(v, blur_sigma), lambda v: v, img)
        return img, snapshots.keep(snaps, t, img)

    img, snaps = jax.lax.fori_loop(0, num_iterations, body, (init, snapshots.empty(init)))
    return ClassVisualizationResult(img, snaps)


@_deprecation.positional_keywords("key", after=2)
def class_visualization(
    model,
    target,
    *,
    key=None,
    l2_reg: float = 1e-3,
    learning_rate: float = 25.0,
    num_iterations: int = 100,
    blur_every: int = 10,
    blur_sigma: float = 0.5,
    max_jitter: int = 16,
    image_size: int | tuple[int, int] = 224,
    init=None,
    jitter=None,
    snapshot_at: Sequence[int] = (),
) -> ClassVisualizationResult:
    """One image per target that the model scores highly as that class (the course's loop).

    Iteration t (0-based): roll by random (oy, ox) ∈ [0, max_jitter]²; ``g = ∇(s_y(I) −
    l2_reg·‖I‖²)``; ``I += lr·g/‖g‖₂``; roll back; clamp each channel to the valid pixel
    range; if ``t % blur_every == 0`` blur with σ = ``blur_sigma`` (scipy's 5-tap reflect
    filter).  All targets run together in one compiled ``fori_loop``.

    Args:
      model: a :class:`jaxviz.Model`.
      target: (K,) classes, one image each.
      key: ``jax.random`` key for the initial image (standard normal) and the jitter.
      init: explicit (K, H, W, 3) initial images (replaces the key's).
      jitter: explicit (num_iterations, K, 2) or (num_iterations, 2) offsets (oy, ox).
      snapshot_at: 1-based iterations after which to keep the image (the course shows
        1, 25, 50, 75, 100), without leaving the compiled loop.

    Returns:
      :class:`ClassVisualizationResult` with ``images`` (K, H, W, 3) and ``snapshots``.

    References:
      Simonyan, Vedaldi, Zisserman (2014); Yosinski et al. (2015).
    """
    target = np.asarray(target) if not hasattr(target, "dtype") else target
    if getattr(target, "ndim", 1) == 0:
        target = target[None]
    target = _checks.check_target(target, target.shape[0], num_classes=model.architecture.num_classes)
    k = target.shape[0]
    num_iterations = _checks.check_positive_int(num_iterations, "num_iterations")
    blur_every = _checks.check_positive_int(blur_every, "blur_every")
    max_jitter = _checks.check_positive_int(max_jitter, "max_jitter", minimum=0)
    for name, value in (("learning_rate", learning_rate), ("blur_sigma", blur_sigma)):
        if not np.isfinite(value) or value <= 0:
            raise InputError(f"`{name}` must be > 0, got {value}")
    if not np.isfinite(l2_reg) or l2_reg < 0:
        raise InputError(f"`l2_reg` must be >= 0, got {l2_reg}")
    snapshot_at = check_snapshot_at(snapshot_at, num_iterations)
    size = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
    if (init is None or jitter is None) and key is None:
        raise InputError("`key` (a jax.random key) is required unless both `init` and `jitter` are given")
    if key is not None:
        init_key, jitter_key = jax.random.split(key)
    if init is None:
        init = jax.random.normal(init_key, (k, *size, 3), model.dtype)
    init = _checks.check_images(init, name="init", architecture=model.architecture).astype(model.dtype)
    if init.shape[0] != k:
        raise InputError(f"`init` must hold {k} images (one per target), got {init.shape[0]}")
    if jitter is None:
        jitter = jax.random.randint(jitter_key, (num_iterations, k, 2), 0, max_jitter + 1)
    jitter = jnp.asarray(jitter, jnp.int32)
    if jitter.ndim == 2 and jitter.shape[1] == 2:
        jitter = jnp.broadcast_to(jitter[:, None, :], (jitter.shape[0], k, 2))
    if jitter.shape != (num_iterations, k, 2):
        raise InputError(f"`jitter` must have shape ({num_iterations}, {k}, 2) or ({num_iterations}, 2), "
                         f"got {tuple(jitter.shape)}")
    dtype = init.dtype
    return _class_visualization(model, target, init, jitter, jnp.asarray(l2_reg, dtype),
                                jnp.asarray(learning_rate, dtype), num_iterations, blur_every,
                                float(blur_sigma), snapshot_at)
