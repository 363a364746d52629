"""ROAD (Rong et al.; pytorch-grad-cam ``ROADCombined``): the target's score change when a
share of the pixels, most or least relevant first, is replaced by noisy linear imputation
from its neighbours, so that the model cannot read the shape of what was removed."""

from __future__ import annotations

import functools
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.attribution import _perturbations
from jaxviz.choices import ROAD_PERCENTILES as PERCENTILES
from jaxviz.errors import InputError
from jaxviz.metrics import _common, _confidence

ORDERS = ("combined", "morf", "lerf")
# The ROAD paper's weights of the 8 neighbours: 1/6 across an edge, 1/12 across a corner.
NEIGHBOUR_WEIGHTS = (((-1, -1), 1 / 12), ((-1, 0), 1 / 6), ((-1, 1), 1 / 12), ((0, -1), 1 / 6),
                     ((0, 1), 1 / 6), ((1, -1), 1 / 12), ((1, 0), 1 / 6), ((1, 1), 1 / 12))


class ROADScores(NamedTuple):
    """A ROAD result.

    Attributes:
      score: (N,) the combined score (LeRF − MoRF) / 2, or for one order its mean change.
      morf: (N, P) the score change after imputing the most relevant pixels at each
        percentile (``None`` for ``order="lerf"``).
      lerf: (N, P) the same for the least relevant pixels (``None`` for ``order="morf"``).
    """

    score: jax.Array
    morf: jax.Array | None
    lerf: jax.Array | None


def _neighbour_sum(a):
    """Σ over the 8 neighbours of weight · value, zero outside the image; a (..., H, W, C)."""
    h, w = a.shape[-3:-1]
    padded = jnp.pad(a, [(0, 0)] * (a.ndim - 3) + [(1, 1), (1, 1), (0, 0)])
    return sum(weight * padded[..., 1 + dy:1 + dy + h, 1 + dx:1 + dx + w, :]
               for (dy, dx), weight in NEIGHBOUR_WEIGHTS)


def impute(x, unknown, *, tol: float | None = None, max_iterations: int | None = None):
    """ROAD's linear imputation: each unknown pixel becomes the weighted mean of its
    neighbours inside the image (1/6 across an edge, 1/12 across a corner), known or
    imputed — the harmonic interpolation ``NoisyLinearImputer`` solves with a sparse LU
    factorisation, here by conjugate gradients on the same (symmetric positive definite)
    system, preconditioned by a multigrid V-cycle, all images in one program.

    Args:
      x: (..., H, W, C) images.
      unknown: (..., H, W) boolean, the pixels to impute (some pixel of each image known).
      tol: the residual, relative to the start's, at which an image's solve stops (both
        weighted by the diagonal's inverse; default 1e-12 in float64, 1e-6 in float32).
      max_iterations: cap on conjugate-gradient steps (default 4·(H + W)).

    Returns:
      x with the unknown pixels replaced.
    """
    x = jnp.asarray(x)
    unknown = jnp.asarray(unknown, bool)
    if unknown.shape != x.shape[:-1]:
        raise InputError(f"`unknown` must have shape {x.shape[:-1]} (the images' without channels), "
                         f"got {unknown.shape}")
    return _impute(x, unknown, *_solver_settings(x, tol, max_iterations))


def _solver_settings(x, tol, max_iterations) -> tuple[float, int]:
    """The imputation solver's (tol, max_iterations), defaults from x's dtype and size."""
    if tol is None:
        tol = 1e-12 if x.dtype == jnp.float64 else 1e-6
    if max_iterations is None:
        max_iterations = 4 * (x.shape[-3] + x.shape[-2])
    return float(tol), _checks.check_positive_int(max_iterations, "max_iterations")


@functools.partial(jax.jit, static_argnames=("tol", "max_iterations"))
def _impute(x, unknown, tol, max_iterations):
    # one image at a time: its arrays stay in cache (a batched loop ran 2× slower), and a
    # batched loop would run every image as long as the slowest
    flat = jax.lax.map(lambda args: _solve_one(*args, tol, max_iterations)[0],
                       (x.reshape((-1,) + x.shape[-3:]), unknown.reshape((-1,) + unknown.shape[-2:])))
    return flat.reshape(x.shape)


# The solver's preconditioner is a multigrid V-cycle: each level halves the grid (2×2
# blocks, unknown where all four pixels are) until its shorter side is at most
# COARSEST_SIDE, with one Jacobi sweep before and after each coarser correction and
# COARSEST_SWEEPS at the coarsest.  Conjugate gradients with the diagonal alone needed
# 76–662 iterations on W51's solves (224×224, float32); with the V-cycle 12–21
# (benchmarks/results/road-multigrid).
COARSEST_SIDE = 16
COARSEST_SWEEPS = 8


def _coarsened(a):
    """(H, W, C) → (⌈H/2⌉, ⌈W/2⌉, C): sums of 2×2 blocks (the image zero-padded to even)."""
    h, w = a.shape[:2]
    a = jnp.pad(a, ((0, h % 2), (0, w % 2), (0, 0)))
    return a[0::2, 0::2] + a[1::2, 0::2] + a[0::2, 1::2] + a[1::2, 1::2]


def _refined(v, shape):
    """The transpose of :func:`_coarsened`: each block's value copied to its pixels."""
    h, w, c = v.shape
    v = jnp.broadcast_to(v[:, None, :, None, :], (h, 2, w, 2, c)).reshape(2 * h, 2 * w, c)
    return v[:shape[0], :shape[1]]


def _system(m, diagonal, u):
    """m ⊙ (diagonal · u − Σ w·(m ⊙ u)): symmetric, positive definite on the unknowns."""
    return m * (diagonal * u - _neighbour_sum(m * u))


def _grid_levels(m):
    """[(unknown mask, the system's diagonal)] from the image's grid to the coarsest; a
    block is unknown where all its pixels are, so each level keeps a known pixel if the
    image has one."""
    levels = []
    while True:
        levels.append((m, _neighbour_sum(jnp.ones(m.shape[:2] + (1,), m.dtype))))
        if min(m.shape[:2]) <= COARSEST_SIDE:
            return levels
        m = (_coarsened(m) >= 4).astype(m.dtype)


def _v_cycle(r, levels, one):
    """An approximate inverse of the system applied to the residual ``r``, symmetric and
    positive definite (Jacobi sweeps, the same before and after; block sums down and
    copies up, each the other's transpose).  ``one`` is a traced 1, the sweep loops'
    trip count: as loops, each level's sweeps leave a buffer behind.  Unrolled, XLA:CPU
    fused each level's result into the 9 reads of the next neighbour sum and recomputed
    it there (5 levels: 1.35 ms a cycle against 0.57 ms)."""
    m, diagonal = levels[0]
    weight = m / diagonal

    def sweeps(count, u):
        return jax.lax.fori_loop(0, count, lambda _, v: v + weight * (r - _system(m, diagonal, v)), u)

    u = weight * r
    if len(levels) == 1:
        return sweeps(COARSEST_SWEEPS - one, u)
    u = u + m * _refined(_v_cycle(_coarsened(r - _system(m, diagonal, u)), levels[1:], one), m.shape)
    return sweeps(one, u)


def _solve_one(x, unknown, tol, max_iterations):
    """One (H, W, C) image, (imputed, iterations): conjugate gradients preconditioned by a
    multigrid V-cycle, stopped on the residual weighted by the diagonal's inverse."""
    m = unknown[..., None].astype(x.dtype)
    levels = _grid_levels(m)
    inside = levels[0][1]  # the system's diagonal
    known = x * (1 - m)
    b = m * _neighbour_sum(known)

    def weighted_norm(r):
        return jnp.vdot(r, r / inside)

    start = weighted_norm(b)
    limit = (tol ** 2) * start
    z = _v_cycle(b, levels, 1)
    state = (jnp.zeros_like(b), b, z, jnp.vdot(b, z), start, 0)

    def unfinished(state):
        return (state[5] < max_iterations) & (state[4] > limit)

    def step(state):
        u, r, p, rz, _, k = state
        ap = _system(m, inside, p)
        alpha = rz / jnp.vdot(p, ap)
        u, r = u + alpha * p, r - alpha * ap
        z = _v_cycle(r, levels, 1 + jnp.minimum(k, 0))  # 1, but not a constant XLA could unroll by
        rz_next = jnp.vdot(r, z)
        return u, r, z + (rz_next / rz) * p, rz_next, weighted_norm(r), k + 1

    u, *_, iterations = jax.lax.while_loop(unfinished, step, state)
    return known + m * u, iterations


def _percentile_thresholds(values, percentiles):
    """(P, N) numpy's ``percentile`` (linear interpolation) of each image's values."""
    flat = values.reshape(values.shape[0], -1)
    return jnp.percentile(flat, jnp.asarray(percentiles, flat.dtype), axis=1)


@functools.partial(jax.jit, static_argnames=("percentiles", "chunk", "score", "tol", "max_iterations"))
def _road_changes(model, x, target, maps, percentiles, lerf, noise, key, draws, chunk, score, tol, max_iterations):
    """(P, N) score changes after imputing the pixels at or above each percentile of the
    maps (MoRF) or of 1 − maps (LeRF; a traced flag: both orders share one program)."""
    values = jnp.where(lerf, 1 - maps, maps)
    draws_for = _common.perturbations_for(draws, key, lambda k, v: jax.random.normal(k, v.shape, v.dtype),
                                          len(percentiles), x, name="draws")
    thresholds = _percentile_thresholds(values, percentiles)  # (P, N)
    evaluate = _confidence.score_function(score)
    n_states = len(percentiles)

    def keeps_input(ids):  # pytorch-grad-cam keeps the values below the threshold
        return (values[None] < thresholds[jnp.minimum(ids, n_states - 1)][:, :, None, None])[..., None]

    def imputed(ids):
        unknown = ~keeps_input(ids)[..., 0]
        filled = _impute(jnp.broadcast_to(x, unknown.shape + x.shape[-1:]), unknown, tol, max_iterations)
        return filled + jnp.where(unknown[..., None], noise * draws_for(ids), 0)

    after = _perturbations.mixture_scores(model, x, target, imputed, n_states, keeps_input, chunk, score=evaluate)
    return after - evaluate(model, x, target)[None]


def road(model, x, target, attributions, *, order: str = "combined", percentiles=PERCENTILES, noise: float = 0.01,
         key=None, draws=None, score: str = "probability", states_per_eval: int | None = None,
         tol: float | None = None, max_iterations: int | None = None) -> ROADScores:
    """Remove And Debias: the target's score change, averaged over percentiles, when the
    pixels a map ranks highest (MoRF) or lowest (LeRF) are imputed from their neighbours
    plus a little noise (pytorch-grad-cam ``ROADMostRelevantFirstAverage``,
    ``ROADLeastRelevantFirstAverage`` and ``ROADCombined``).  For MoRF a faithful map makes
    the score fall fast (more negative is better); for LeRF it keeps it (higher is better);
    the combined score (LeRF − MoRF) / 2 is higher for better maps.

    At percentile p, MoRF imputes the pixels whose map value is at or above the map's p-th
    percentile (numpy's linear interpolation), LeRF those whose 1 − value is at or above
    the p-th percentile of 1 − map, as pytorch-grad-cam does.  Imputed pixels take the
    linear imputation (:func:`impute`) of the normalised image plus ``noise`` times a
    standard normal draw per channel.  Every percentile of every image is imputed and
    scored inside one compiled program, ``states_per_eval`` percentiles at a time.  A
    constant map removes every pixel at every percentile: with nothing known to impute
    from, they become 0 (the mean colour) plus noise (the package's system is singular
    there).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      attributions: (N, H, W) or (N, H, W, 1) one value per pixel, usually in [0, 1] (a
        CAM with ``resolution="input"``).
      order: ``"combined"`` (default), ``"morf"`` or ``"lerf"``.
      percentiles: the percentiles averaged over (pytorch-grad-cam: 10, 20, …, 90).
      noise: the noise's standard deviation (0.01, the paper's; 0 for none).
      key: a jax.random key for the noise (required unless ``draws`` or ``noise=0``);
        MoRF draws from ``fold_in(key, 0)`` and LeRF from ``fold_in(key, 1)``, each
        percentile from ``fold_in`` of that by its index.
      draws: the standard normal draws themselves, (P, N, H, W, 3) for one order, a pair
        (MoRF's, LeRF's) for ``"combined"``; only the imputed pixels' are used.
      score: ``"probability"`` (the softmax, ``ClassifierOutputSoftmaxTarget``) or
        ``"logit"`` (``ClassifierOutputTarget``).
      states_per_eval: percentiles imputed and scored per evaluation (default 1: the
        solves of one evaluation run until its slowest converges).
      tol, max_iterations: the imputation's solver (:func:`impute`).

    Returns:
      :class:`ROADScores`.

    References:
      Rong, Leemann, Borisov, Kasneci, Kasneci. A Consistent and Efficient Evaluation
      Strategy for Attribution Methods (ICML 2022).
    """
    x, target = scoring.prepare(model, x, target)
    maps = _common.check_attributions(attributions, x=x, per_pixel=True).astype(x.dtype)
    _checks.check_choice(order, "order", ORDERS)
    _checks.check_choice(score, "score", _confidence.SCORES)
    percentiles = tuple(float(p) for p in np.atleast_1d(np.asarray(percentiles, float)))
    if not percentiles or not all(0 < p < 100 for p in percentiles):
        raise InputError(f"`percentiles` must be one or more values in (0, 100), got {percentiles}")
    tol, max_iterations = _solver_settings(x, tol, max_iterations)
    orders = ("morf", "lerf") if order == "combined" else (order,)
    if draws is not None and order != "combined":
        draws = (draws,)
    if draws is not None and (not isinstance(draws, (tuple, list)) or len(draws) != len(orders)):
        raise InputError("`draws` must be a (P, N, H, W, 3) array, or a pair of them for order='combined'")
    if noise == 0 and key is None and draws is None:
        key = jax.random.key(0)  # drawn and multiplied by 0
    # one percentile per evaluation by default: its images' solves take about as many
    # iterations, where a chunk of several would all run as long as the largest removal's
    chunk = _common.states_per_eval(1 if states_per_eval is None else states_per_eval, len(percentiles), x)
    changes = {}
    for i, name in enumerate(orders):
        order_key = None if key is None else jax.random.fold_in(key, ORDERS.index(name) - 1)
        order_draws = None if draws is None else _common.checked_perturbations(draws[i], len(percentiles), x,
                                                                               name="draws", samples="P")
        changes[name] = _road_changes(model, x, target, maps, percentiles, jnp.asarray(name == "lerf"), float(noise),
                                      order_key, order_draws, chunk, score, tol, max_iterations).T
    means = {name: c.mean(axis=1) for name, c in changes.items()}
    result = (means["lerf"] - means["morf"]) / 2 if order == "combined" else means[order]
    return ROADScores(result, changes.get("morf"), changes.get("lerf"))
