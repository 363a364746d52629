"""Average sensitivity (Yeh et al.; Quantus ``AvgSensitivity``): how far an explanation
moves, on average, when the input moves a little."""

from __future__ import annotations

from jaxviz.metrics import _robustness


def avg_sensitivity(model, x, target, method, *, key=None, perturbations=None, n_perturb_samples: int = 200,
                    perturb_radius: float = 0.2, norm_ord="fro", samples_per_eval: int | None = None):
    """The mean over perturbations δ ~ U(−r, r) of ‖e(x + δ) − e(x)‖ / ‖e(x)‖ per image
    (Quantus ``AvgSensitivity`` with its defaults: 200 samples, r = 0.2, Frobenius norms,
    explanations neither normalised nor made absolute).  Lower is better.

    Args:
      model, x, target, method, key, perturbations, norm_ord, samples_per_eval: as for
        :func:`jaxviz.metrics.sensitivity_max`.
      n_perturb_samples: perturbations per image (Quantus' ``nr_samples``).
      perturb_radius: r (Quantus' ``lower_bound``).

    Returns:
      (N,) sensitivities.  (Quantus can drop the samples whose perturbation changes the
      prediction, ``return_nan_when_prediction_changes``; not offered here.)

    References:
      Yeh, Hsieh, Suggala, Inouye, Ravikumar. On the (In)fidelity and Sensitivity of
      Explanations (NeurIPS 2019).
    """
    return _robustness.explanation_changes(model, x, target, method, key=key, perturbations=perturbations,
                                           n_samples=n_perturb_samples, noise_kind="uniform",
                                           noise_scale=perturb_radius, norm_ord=norm_ord,
                                           samples_per_eval=samples_per_eval, reduce="mean")
