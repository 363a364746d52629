"""Fooling (adversarial) images: the course's normalised-gradient ascent, and a PGD variant
with an ε budget — each one compiled ``lax.while_loop`` over the whole batch.

The batch runs through a fixed number of *slots*: every loop step evaluates the slots,
writes back each image that is finished (fooled, out of iterations, or diverged) and loads
the next waiting image into its slot.  The work is the sum of the iterations the images
need, not the batch size times the slowest image, and shapes stay static.
"""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _deprecation, scoring
from jaxviz.choices import FOOLING_NORMS as NORMS
from jaxviz.errors import InputError
from jaxviz.images import STD, pixel_bounds


class FoolingResult(NamedTuple):
    images: jax.Array  # (N, H, W, 3) the fooled (or last finite) images
    iterations: jax.Array  # (N,) gradient steps taken
    success: jax.Array  # (N,) bool: argmax of the returned image is the target
    diverged: jax.Array  # (N,) bool: a NaN/inf appeared; the image stopped before it


def _normalised_step(g, x, x0, learning_rate, norm, epsilon):
    """The course's ``x + lr·g/‖g‖₂``, or a projected step within ``epsilon`` of ``x0``."""
    axes = tuple(range(1, g.ndim))
    if epsilon is None:
        return x + learning_rate * g / jnp.sqrt(jnp.sum(g * g, axis=axes, keepdims=True))
    std = jnp.asarray(STD, x.dtype).reshape(1, 1, 1, 3)
    low, high = pixel_bounds(x.dtype)
    if norm == "linf":
        # PGD: signed step, then clip to the ε box (ε in pixel units / 255 → per channel)
        x = x + learning_rate * jnp.sign(g) / std
        delta = jnp.clip(x - x0, -epsilon / std, epsilon / std)
    else:
        g_pixels = g / std  # the gradient with respect to pixel values
        x = x + learning_rate * g_pixels / jnp.sqrt(jnp.sum(g_pixels * g_pixels, axis=axes, keepdims=True)) / std
        delta = (x - x0) * std  # measured in pixel units
        scale = jnp.minimum(1.0, epsilon / jnp.sqrt(jnp.sum(delta * delta, axis=axes, keepdims=True) + 1e-30))
        delta = delta * scale / std
    return jnp.clip(x0 + delta, low, high)


@functools.partial(jax.jit, static_argnames=("max_iter", "slots", "norm", "bounded"))
def _fool(model, x, target, learning_rate, epsilon, max_iter, slots, norm, bounded):
    n = x.shape[0]
    pad = lambda a: jnp.concatenate([a, a[:1]])  # noqa: E731 - row n: where empty slots write
    source, goals = pad(x), pad(target)
    out, iters = pad(x), jnp.zeros(n + 1, jnp.int32)
    fooled, broke = jnp.zeros(n + 1, bool), jnp.zeros(n + 1, bool)
    idx = jnp.where(jnp.arange(slots) < n, jnp.arange(slots), n)
    state = (idx, source[idx], jnp.zeros(slots, jnp.int32), jnp.int32(min(slots, n)), out, iters, fooled, broke)

    head_input = model.architecture.head_input

    def logits_and_pullback(v, t):
        # every logit for the check, but the backward pass from the target's alone
        if head_input is None:  # a head not separated (your own model): from the logits
            logits, pullback = jax.vjp(lambda u: model.apply(model.params, u), v)
            return logits, lambda: pullback(jax.nn.one_hot(t, logits.shape[1], dtype=logits.dtype))[0]
        features, pullback = jax.vjp(lambda u: model.apply(model.params, u, capture=(head_input,))[head_input], v)
        logits = model.classify(model.params, features)
        target_logit = lambda f: model.classify(model.params, f, target=t).sum()  # noqa: E731
        return logits, lambda: pullback(jax.grad(target_logit)(features))[0]

    def cond(state):
        return jnp.any(state[0] < n)

    def body(state):
        idx, cur, it, next_ptr, out, iters, fooled, broke = state
        t = goals[idx]
        logits, gradient = logits_and_pullback(cur, t)
        is_fooled = jnp.argmax(logits, axis=1) == t
        stepping = ~is_fooled & (it < max_iter) & (idx < n)
        # like the course, which checks the forward pass first: no backward pass when no
        # slot takes a step (with one slot, the last evaluation of every image)
        g = jax.lax.cond(jnp.any(stepping), gradient, lambda: jnp.zeros_like(cur))
        stepped = _normalised_step(g, cur, source[idx], learning_rate, norm, epsilon if bounded else None)
        finite = jnp.all(jnp.isfinite(stepped), axis=(1, 2, 3)) | ~stepping
        done = ~stepping | ~finite
        # finished images go back to the output; their slots take the next waiting images
        out = out.at[idx].set(jnp.where(done[:, None, None, None], cur, out[idx]))
        iters = iters.at[idx].set(jnp.where(done, it, iters[idx]))
        fooled = fooled.at[idx].set(jnp.where(done, is_fooled, fooled[idx]))
        broke = broke.at[idx].set(jnp.where(done, ~finite & ~is_fooled & (it < max_iter), broke[idx]))
        rank = jnp.cumsum(done, dtype=jnp.int32) - 1
        new_idx = jnp.where(done, jnp.minimum(next_ptr + rank, n), idx)
        new_idx = jnp.where(done & (idx >= n), n, new_idx)
        next_ptr = jnp.minimum(next_ptr + jnp.sum(done & (idx < n), dtype=jnp.int32), n)
        cur = jnp.where(done[:, None, None, None], source[new_idx], stepped)
        it = jnp.where(done, 0, it + 1)
        return new_idx, cur, it, next_ptr, out, iters, fooled, broke

    _, _, _, _, out, iters, fooled, broke = jax.lax.while_loop(cond, body, state)
    return FoolingResult(out[:n], iters[:n], fooled[:n], broke[:n])


def fooling_images(
    model,
    x,
    target,
    *,
    learning_rate: float | None = None,
    max_iter: int = 100,
    epsilon: float | None = None,
    norm: str = "linf",
    slots: int | None = None,
) -> FoolingResult:
    """Targeted fooling images by gradient ascent on the target's raw score.

    Course rule (``epsilon=None``): before each step an image whose argmax is its target
    stops; otherwise ``x += lr · g/‖g‖₂`` with ``g = ∇ₓ s_target`` (norm over the image).
    Each image stops on its own.  The CS231n course uses ``learning_rate=1``, CS7643 10.

    With ``epsilon`` (pixel units: 8/255 means 8 grey levels): projected steps that keep
    ``|x − x₀|`` within ε (L∞: signed steps of ``learning_rate`` pixel units — PGD) or
    ``‖x − x₀‖₂ ≤ ε`` (L2: steps of ``learning_rate`` along the normalised pixel
    gradient), and pixels within [0, 1]; ``learning_rate`` defaults to ε/4.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) target classes.
      learning_rate: step size (> 0); default 1 (course) or ε/4 (with ``epsilon``).
      max_iter: most steps per image (>= 1).
      epsilon: perturbation budget in pixel units, or ``None`` for the course's loop.
      norm: ``"linf"`` or ``"l2"`` (with ``epsilon``).
      slots: images evaluated together per loop step.  Default: 1 on CPU, where a
        larger batch gains nothing and idle slots waiting for slow images cost time
        (benchmarks/results/design-notes.md); min(N, 16) on accelerators.

    Returns:
      :class:`FoolingResult`: images, iterations, success and divergence flags.  A
      diverging image (NaN/inf) stops before the bad step: no NaN pixels are returned.

    References:
      Szegedy et al. Intriguing Properties of Neural Networks (2014); Madry et al.
      Towards Deep Learning Models Resistant to Adversarial Attacks (2018), for the
      projected steps.
    """
    x, target = scoring.prepare(model, x, target)
    max_iter = _checks.check_positive_int(max_iter, "max_iter")
    if epsilon is not None and not (np.isfinite(epsilon) and epsilon > 0):
        raise InputError(f"`epsilon` must be > 0 (pixel units, e.g. 8/255), got {epsilon}")
    if learning_rate is None:
        learning_rate = 1.0 if epsilon is None else epsilon / 4
    if not np.isfinite(learning_rate) or learning_rate <= 0:
        raise InputError(f"`learning_rate` must be > 0, got {learning_rate}")
    _checks.check_choice(norm, "norm", NORMS)
    if slots is None:
        slots = 1 if jax.default_backend() == "cpu" else 16
    slots = _checks.check_positive_int(slots, "slots")
    slots = min(slots, x.shape[0])
    return _fool(
        model,
        x,
        target,
        jnp.asarray(learning_rate, x.dtype),
        jnp.asarray(epsilon if epsilon is not None else 0.0, x.dtype),
        max_iter,
        slots,
        norm,
        epsilon is not None,
    )


make_fooling_images = _deprecation.alias(fooling_images, "make_fooling_images")
