"""Max-sensitivity (Yeh et al., Captum ``sensitivity_max``): how far an explanation moves
when the input moves a little."""

from __future__ import annotations

from jaxviz.metrics import _robustness


def sensitivity_max(model, x, target, method, *, key=None, perturbations=None, n_perturb_samples: int = 10,
                    perturb_radius: float = 0.02, norm_ord="fro", samples_per_eval: int | None = None):
    """max over perturbations δ of ‖e(x + δ) − e(x)‖ / ‖e(x)‖ per image, e the
    explanation ``method`` gives (Captum ``sensitivity_max``, with its default
    perturbation δ ~ U(−r, r) per element).  Lower is better.

    ``method`` explains every perturbed copy of every image inside one compiled program,
    ``samples_per_eval`` copies of the batch per call; each sample's δ is drawn there from
    ``jax.random.fold_in(key, sample)`` (JAX's ``threefry_partitionable(False)`` draws,
    faster on a CPU).

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
    return _robustness.explanation_changes(model, x, target, method, key=key, perturbations=perturbations,
                                           n_samples=n_perturb_samples, noise_kind="uniform",
                                           noise_scale=perturb_radius, norm_ord=norm_ord,
                                           samples_per_eval=samples_per_eval)
