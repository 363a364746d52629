"""What every path method shares (Integrated Gradients, conductance, and the path
methods to come): Captum's quadratures, baselines, the points along the path, and
evaluating the steps a chunk at a time inside one compiled loop."""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.choices import QUADRATURE_METHODS
from jaxviz.errors import InputError

DEFAULT_INTERNAL_BATCH_SIZE = 128

METHODS = QUADRATURE_METHODS


@functools.cache
def quadrature(method: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Captum's ``approximation_parameters``: (alphas, step weights) in float64."""
    _checks.check_choice(method, "method", METHODS)
    _checks.check_positive_int(n_steps, "n_steps")
    n = n_steps
    if method == "gausslegendre":
        x, w = np.polynomial.legendre.leggauss(n)
        return 0.5 * (x + 1.0), 0.5 * w
    if method == "riemann_trapezoid":
        if n < 2:
            raise InputError(f"`n_steps` must be >= 2 for riemann_trapezoid, got {n}")
        # Captum's: steps of 1/n with the two ends halved (they sum to (n−1)/n, not 1)
        weights = np.full(n, 1.0 / n)
        weights[[0, -1]] /= 2
        return np.linspace(0.0, 1.0, n), weights
    weights = np.full(n, 1.0 / n)
    if method == "riemann_left":
        return np.linspace(0.0, 1.0 - 1.0 / n, n), weights
    if method == "riemann_right":
        return np.linspace(1.0 / n, 1.0, n), weights
    return np.linspace(1.0 / (2 * n), 1.0 - 1.0 / (2 * n), n), weights  # riemann_middle


def split_chunks(values, chunk: int, fill=0.0):
    """Pads 1-D ``values`` with ``fill`` to a multiple of ``chunk``; returns (n_chunks, chunk).

    Loops over the chunks (``lax.scan``/``lax.map``) evaluate ``chunk`` items at a time,
    which bounds memory; methods choose a ``fill`` whose contribution is zero.
    """
    values = jnp.asarray(values)
    n = values.shape[0]
    chunk = max(1, min(chunk, n))
    pad = (-n) % chunk
    padded = jnp.concatenate([values, jnp.full((pad,), fill, values.dtype)])
    return padded.reshape(-1, chunk)


def balanced_chunk(total: int, most: int) -> int:
    """Items per evaluation: at most ``most``, balanced over the evaluations ``total``
    items need, so that the last is not padded with wasted items (50 at most 16 per
    evaluation: 4 of 13, not 4 of 16)."""
    most = max(1, min(most, total))
    evaluations = -(-total // most)
    return -(-total // evaluations)


def steps_per_chunk(internal_batch_size: int | None, batch: int, n_steps: int) -> int:
    """How many interpolation steps (of the whole batch) one evaluation takes: at most
    ``internal_batch_size // batch`` (at least 1), balanced (:func:`balanced_chunk`)."""
    if internal_batch_size is None:
        return n_steps
    _checks.check_positive_int(internal_batch_size, "internal_batch_size")
    return balanced_chunk(n_steps, internal_batch_size // batch)


def broadcast_baselines(baselines, x, name: str = "baselines"):
    """``None``/scalar/(H,W,C)/(1,H,W,C)/(N,H,W,C) baselines as an (N, H, W, C) array."""
    return jnp.broadcast_to(checked_baselines(baselines, x, name), x.shape)


def checked_baselines(baselines, x, name: str = "baselines"):
    """``None``/scalar/(H,W,C)/(1,H,W,C)/(N,H,W,C) baselines as a (1, H, W, C) array when
    every image shares one, else (N, H, W, C)."""
    if baselines is None:
        return jnp.zeros((1,) + x.shape[1:], x.dtype)
    b = jnp.asarray(baselines, x.dtype)
    if b.ndim == 0:
        b = jnp.full((1,) + x.shape[1:], b)
    if b.ndim == 3:
        b = b[None]
    if b.ndim != 4 or b.shape[1:] != x.shape[1:] or b.shape[0] not in (1, x.shape[0]):
        raise InputError(
            f"`{name}` must be a scalar or have shape {x.shape[1:]}, (1, *) or {tuple(x.shape)}, got {tuple(b.shape)}"
        )
    if _checks.is_concrete(b) and not _checks.all_finite(b):
        raise InputError(f"`{name}` contains NaN or inf values")
    return b


def baseline_distribution(baselines, x, name: str = "baselines"):
    """Baselines to draw from (SHAP methods): ``None`` (one zero image), a scalar, or an
    array of shape (H, W, C) or (B, H, W, C), as a (B, H, W, C) array."""
    if baselines is None:
        return jnp.zeros((1,) + x.shape[1:], x.dtype)
    b = jnp.asarray(baselines, x.dtype)
    if b.ndim == 0:
        b = jnp.full((1,) + x.shape[1:], b)
    if b.ndim == 3:
        b = b[None]
    if b.ndim != 4 or b.shape[1:] != x.shape[1:] or b.shape[0] < 1:
        raise InputError(f"`{name}` must be a scalar or have shape {x.shape[1:]} or (B, *{x.shape[1:]}), "
                         f"got {tuple(b.shape)}")
    if _checks.is_concrete(b) and not _checks.all_finite(b):
        raise InputError(f"`{name}` contains NaN or inf values")
    return b


def path_points(baselines, diff, alphas):
    """(k, N, H, W, C) points ``b + α·(x − b)`` for the (k,) ``alphas``."""
    return baselines[None] + alphas[:, None, None, None, None] * diff[None]


def prepare_layer_path(model, x, target, layer, baselines, n_steps, method, internal_batch_size):
    """The checks of a path method at a layer (conductance, internal influence, layer IG):
    x and target checked, the layer (default: the model's last convolutional block), the
    baselines broadcast, and the steps per chunk."""
    _checks.check_positive_int(n_steps, "n_steps")
    _checks.check_choice(method, "method", METHODS)
    layer = model.architecture.default_layer if layer is None else layer
    x, target = scoring.prepare(model, x, target, layers=(layer,))
    baselines = broadcast_baselines(baselines, x)
    chunk = min(steps_per_chunk(internal_batch_size, x.shape[0], n_steps), n_steps)
    return x, target, layer, baselines, chunk
