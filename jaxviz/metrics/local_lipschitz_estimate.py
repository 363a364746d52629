"""Local Lipschitz estimate (Alvarez-Melis & Jaakkola; Quantus ``LocalLipschitzEstimate``):
the largest ratio of explanation change to input change near each image."""

from __future__ import annotations

from jaxviz.metrics import _robustness


def local_lipschitz_estimate(model, x, target, method, *, key=None, perturbations=None,
                             n_perturb_samples: int = 200, perturb_std: float = 0.1, normalise: bool = True,
                             samples_per_eval: int | None = None):
    """max over perturbations δ ~ N(0, σ²) of ‖e(x + δ) − e(x)‖₂ / ‖δ‖₂ per image (Quantus
    ``LocalLipschitzEstimate`` with its defaults: 200 samples, σ = 0.1, explanations
    normalised by their largest magnitude).  Lower is better.

    Args:
      model, x, target, method, key, perturbations, samples_per_eval: as for
        :func:`jaxviz.metrics.sensitivity_max`.
      n_perturb_samples: perturbations per image (Quantus' ``nr_samples``).
      perturb_std: σ.
      normalise: divide each explanation by its largest magnitude first (Quantus divides by
        the batch's largest unless told the axes).

    Returns:
      (N,) estimates.

    References:
      Alvarez-Melis, Jaakkola. On the Robustness of Interpretability Methods (2018).
    """
    return _robustness.explanation_changes(model, x, target, method, key=key, perturbations=perturbations,
                                           n_samples=n_perturb_samples, noise_kind="gaussian",
                                           noise_scale=perturb_std, norm_ord=2, samples_per_eval=samples_per_eval,
                                           per_input=True, normalise=normalise)
