"""Blur IG (PAIR ``saliency`` ``BlurIG``): integrated gradients along the path that blurs
the image with a growing Gaussian, every step of every image in one compiled loop."""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _paths
from jaxviz.errors import InputError

TRUNCATE = 4.0  # scipy.ndimage.gaussian_filter's default: the kernel reaches 4σ


def blur_matrix(sigma, size: int, max_radius: int, dtype):
    """(size, size) matrix of ``scipy.ndimage.gaussian_filter1d(·, sigma, mode="constant")``
    on one axis: the kernel exp(−d²/2σ²) for |d| ≤ int(4σ + 0.5), normalised over that
    whole window (also where it reaches past the image, whose outside is 0); the identity
    for σ = 0.  ``sigma`` may be traced; ``max_radius`` bounds its window."""
    safe = jnp.where(sigma > 0, sigma, 1)
    radius = jnp.floor(TRUNCATE * safe + 0.5)

    def kernel(d):
        return jnp.where(jnp.abs(d) <= radius, jnp.exp(-0.5 * d * d / (safe * safe)), 0)

    norm = kernel(jnp.arange(-max_radius, max_radius + 1, dtype=dtype)).sum()
    offsets = jnp.arange(size, dtype=dtype)
    matrix = kernel(offsets[None, :] - offsets[:, None]) / norm
    return jnp.where(sigma > 0, matrix, jnp.eye(size, dtype=dtype))


def blur(x, sigma, max_radius: int):
    """(N, H, W, C) images blurred along H and W by σ (``gaussian_blur`` of PAIR)."""
    rows = blur_matrix(sigma, x.shape[1], max_radius, x.dtype)
    cols = blur_matrix(sigma, x.shape[2], max_radius, x.dtype)
    return jnp.einsum("hi,nijc,wj->nhwc", rows, x, cols)


def sigmas(max_sigma: float, steps: int, sqrt: bool) -> np.ndarray:
    """The path's σ_0 … σ_steps: i·max_sigma/steps, or their square roots (``sqrt``)."""
    values = [float(i) * max_sigma / float(steps) for i in range(steps + 1)]
    return np.array([math.sqrt(v) for v in values] if sqrt else values)


@functools.partial(jax.jit, static_argnames=("max_sigma", "steps", "grad_step", "sqrt", "chunk"))
def _blur_ig(model, x, target, max_sigma, steps, grad_step, sqrt, chunk):
    path = sigmas(max_sigma, steps, sqrt)
    max_radius = int(TRUNCATE * (path.max() + grad_step) + 0.5)
    sigma = jnp.asarray(path[:-1], x.dtype)
    width = jnp.asarray(np.diff(path), x.dtype)  # Δσ_i; 0 fills the last chunk

    def step_sum(group):
        s, w = group  # (chunk,) σ_i and Δσ_i

        def at(si):
            point = blur(x, si, max_radius)
            velocity = (blur(x, si + grad_step, max_radius) - point) / grad_step
            return point, velocity

        points, velocities = jax.vmap(at)(s)  # (c, N, H, W, C)
        c, n = points.shape[:2]
        grads = jax.grad(lambda v: scoring.target_logits(model, v, scoring.repeat_targets(target, c))[0].sum())(
            points.reshape((c * n,) + x.shape[1:])).reshape(points.shape)
        return jnp.einsum("c,cnhwk->nhwk", w, velocities * grads)

    def body(total, group):
        return total + step_sum(group), None

    groups = (_paths.split_chunks(sigma, chunk), _paths.split_chunks(width, chunk))
    total, _ = jax.lax.scan(body, jnp.zeros_like(x), groups)
    return -total


def blur_ig(model, x, target, *, max_sigma: float = 50.0, steps: int = 100, grad_step: float = 0.01,
            sqrt: bool = False, internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE):
    """Blur IG: −Σ_i Δσ_i · ∂blur(x, σ)/∂σ|σ_i ⊙ ∇ₓF(blur(x, σ_i)), the path from the
    image (σ = 0) to its blur at ``max_sigma``.

    As PAIR's ``BlurIG.GetMask`` with the target's logit as F: σ_i = i·max_sigma/steps
    (or its square root, ``sqrt``), the blur ``scipy.ndimage.gaussian_filter`` over height
    and width with zeros outside (truncated at 4σ), its σ-derivative a forward difference
    of ``grad_step``.  (PAIR multiplies a batch of steps by the last one's Δσ: the same
    for even steps, not for ``sqrt=True`` with ``batch_size`` > 1; jaxviz weights each
    step by its own.)

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      max_sigma: the path's largest blur (default 50 pixels).
      steps: gradient evaluations along the path (default 100).
      grad_step: the σ step of the blur's derivative (default 0.01).
      sqrt: σ_i = √(i·max_sigma/steps) instead of linear spacing.
      internal_batch_size: images per gradient evaluation (steps × images; memory bound);
        ``None``: every step at once.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Xu, Venugopalan, Sundararajan. Attribution in scale and space (CVPR 2020).
    """
    x, target = scoring.prepare(model, x, target)
    steps = _checks.check_positive_int(steps, "steps")
    for name, value in (("max_sigma", max_sigma), ("grad_step", grad_step)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value < math.inf:
            raise InputError(f"`{name}` must be a positive number, got {value!r}")
    chunk = _paths.steps_per_chunk(internal_batch_size, x.shape[0], steps)
    return _blur_ig(model, x, target, float(max_sigma), steps, float(grad_step), bool(sqrt), chunk)
