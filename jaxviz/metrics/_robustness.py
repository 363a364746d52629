"""What the robustness metrics share: explain every perturbed copy of every image inside one
compiled loop and compare each explanation with the unperturbed one."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.errors import InputError
from jaxviz.metrics import _common

NORMS = ("fro", 1, 2, np.inf)


def noise(kind: str, scale: float):
    """A draw ``(key, x) → perturbation``: ``("uniform", r)`` U(−r, r) or ``("gaussian", σ)``
    N(0, σ²) per element."""
    if kind == "uniform":
        return lambda key, x: jax.random.uniform(key, x.shape, x.dtype, -scale, scale)
    return lambda key, x: scale * jax.random.normal(key, x.shape, x.dtype)


@functools.partial(jax.jit, static_argnames=("method", "noise_kind", "noise_scale", "n_samples", "chunk", "norm_ord",
                                             "per_input", "normalise", "reduce"))
def _explanation_changes(model, x, target, key, perturbations, method, noise_kind, noise_scale, n_samples, chunk,
                         norm_ord, per_input, normalise, reduce):
    n = x.shape[0]
    order = 2 if norm_ord == "fro" else norm_ord

    def explain(v, t):
        a = method(model, v, t).reshape(v.shape[0], -1)
        return _common.normalise_by_max(a) if normalise else a

    explanation = explain(x, target)
    scale = jnp.linalg.norm(explanation, ord=order, axis=1)
    scale = jnp.where(scale == 0, 1.0, scale)
    perturbation = _common.perturbations_for(perturbations, key, noise(noise_kind, noise_scale), n_samples, x)

    def evaluate(ids):  # (k,) sample ids → (k, N) ratios
        k = ids.shape[0]
        delta = perturbation(ids)
        moved = (x[None] + delta).reshape((k * n,) + x.shape[1:])
        changed = explain(moved, jnp.tile(target, k)).reshape(k, n, -1)
        distance = jnp.linalg.norm(changed - explanation[None], ord=order, axis=2)
        if per_input:  # ‖Δe‖ / ‖Δx‖
            return distance / jnp.linalg.norm(delta.reshape(k, n, -1), ord=order, axis=2)
        return distance / scale[None]

    ratios = jax.lax.map(evaluate, _common.sample_ids(n_samples, chunk)).reshape(-1, n)[:n_samples]
    return ratios.max(axis=0) if reduce == "max" else ratios.mean(axis=0)


def explanation_changes(model, x, target, method, *, key, perturbations, n_samples, noise_kind, noise_scale,
                        norm_ord, samples_per_eval, per_input=False, normalise=False, reduce="max"):
    """Checks the arguments and reduces (max or mean over the samples) each image's
    ‖e(x + δ) − e(x)‖ / ‖e(x)‖ (or / ‖δ‖ with ``per_input``)."""
    x, target = scoring.prepare(model, x, target)
    if not callable(method):
        raise _checks.InputTypeError(f"`method` must be a function (model, x, target) -> attributions, got {method!r}")
    n_samples = _checks.check_positive_int(n_samples, "n_perturb_samples")
    if norm_ord not in NORMS:
        raise InputError(f"`norm_ord` must be one of {list(NORMS)}, got {norm_ord!r}")
    if not float(noise_scale) > 0:
        raise InputError(f"the perturbation's size must be > 0, got {noise_scale}")
    chunk = _common.states_per_eval(samples_per_eval, n_samples, x, name="samples_per_eval", chunks=2)
    perturbations = _common.checked_perturbations(perturbations, n_samples, x)
    return _explanation_changes(model, x, target, key, perturbations, method, noise_kind, float(noise_scale),
                                n_samples, chunk, norm_ord, bool(per_input), bool(normalise), reduce)
