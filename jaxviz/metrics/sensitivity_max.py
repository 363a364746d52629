"""Max-sensitivity (Yeh et al., Captum ``sensitivity_max``): how far an explanation moves
when the input moves a little."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, scoring
from jaxviz.metrics import _common

NORMS = ("fro", 1, 2, np.inf)


@functools.partial(jax.jit, static_argnames=("method", "radius", "n_samples", "chunk", "norm_ord"))
def _sensitivity_max(model, x, target, key, perturbations, method, radius, n_samples, chunk, norm_ord):
    n = x.shape[0]
    explanation = method(model, x, target).reshape(n, -1)
    order = 2 if norm_ord == "fro" else norm_ord
    scale = jnp.linalg.norm(explanation, ord=order, axis=1)
    scale = jnp.where(scale == 0, 1.0, scale)
    draw = lambda k, v: jax.random.uniform(k, v.shape, v.dtype, -radius, radius)  # noqa: E731
    perturbation = _common.perturbations_for(perturbations, key, draw, n_samples, x)

    def evaluate(ids):  # (k,) sample ids → (k, N) relative changes
        k = ids.shape[0]
        moved = (x[None] + perturbation(ids)).reshape((k * n,) + x.shape[1:])
        changed = method(model, moved, jnp.tile(target, k)).reshape(k, n, -1)
        ratios = jnp.linalg.norm(changed - explanation[None], ord=order, axis=2) / scale[None]
        return jnp.where((ids < n_samples)[:, None], ratios, -jnp.inf)

    return jax.lax.map(evaluate, _common.sample_ids(n_samples, chunk)).reshape(-1, n).max(axis=0)


def sensitivity_max(model, x, target, method, *, key=None, perturbations=None, n_perturb_samples: int = 10,
                    perturb_radius: float = 0.02, norm_ord="fro", samples_per_eval: int | None = None):
    """max over perturbations δ of ‖e(x + δ) − e(x)‖ / ‖e(x)‖ per image, e the
    explanation ``method`` gives (Captum ``sensitivity_max``, with its default
    perturbation δ ~ U(−r, r) per element).  Lower is better.

    ``method`` explains every perturbed copy of every image inside one compiled program,
    ``samples_per_eval`` copies of the batch per call; each sample's δ is drawn there from
    ``jax.random.fold_in(key, sample)``.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: (N,) class indices.
      method: ``method(model, x, target) -> attributions``, e.g. ``jaxviz.saliency`` or
        ``functools.partial(jaxviz.integrated_gradients, n_steps=20)`` (a function jit can
        hash: a module-level function or a partial made once).
      key: a jax.random key for δ (required unless ``perturbations``).
      perturbations: (n_perturb_samples, N, H, W, 3) the δ themselves.
      n_perturb_samples: perturbations per image.
      perturb_radius: r.
      norm_ord: ``"fro"`` (Captum's default: the 2-norm of the flattened explanation), 1, 2
        or ``numpy.inf``.  An explanation of norm 0 is divided by 1, as in Captum.
      samples_per_eval: copies of the batch per call of ``method`` (memory bound; the
        method chunks its own batch as usual).

    Returns:
      (N,) sensitivities.

    References:
      Yeh, Hsieh, Suggala, Inouye, Ravikumar. On the (In)fidelity and Sensitivity of
      Explanations (NeurIPS 2019).
    """
    x, target = scoring.prepare(model, x, target)
    if not callable(method):
        raise _checks.InputTypeError(f"`method` must be a function (model, x, target) -> attributions, got {method!r}")
    n_samples = _checks.check_positive_int(n_perturb_samples, "n_perturb_samples")
    if norm_ord not in NORMS:
        raise _checks.InputError(f"`norm_ord` must be one of {list(NORMS)}, got {norm_ord!r}")
    if not float(perturb_radius) > 0:
        raise _checks.InputError(f"`perturb_radius` must be > 0, got {perturb_radius}")
    chunk = _common.states_per_eval(samples_per_eval, n_samples, x, name="samples_per_eval", chunks=16)
    return _sensitivity_max(model, x, target, key, perturbations, method, float(perturb_radius), n_samples, chunk,
                            norm_ord)
