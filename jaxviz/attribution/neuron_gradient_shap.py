"""GradientShap of one unit of a layer (Captum ``NeuronGradientShap``)."""

from __future__ import annotations

from jaxviz import scoring
from jaxviz.attribution import _paths
from jaxviz.attribution.gradient_shap import gradient_shap


@scoring.neuron_method
def neuron_gradient_shap(model, x, target, *, layer: str, baselines=None, n_samples: int = 5, stdevs: float = 0.0,
                         key=None, baseline_indices=None, noise=None, alphas=None,
                         internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE,
                         multiply_by_inputs: bool = True):
    """GradientShap of one unit of ``layer``'s output (Captum ``NeuronGradientShap``); the
    options and the random draws are :func:`jaxviz.gradient_shap`'s.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target, layer: the unit and its layer, as :func:`jaxviz.neuron_gradient`'s.
      baselines, n_samples, stdevs, key, baseline_indices, noise, alphas, internal_batch_size,
        multiply_by_inputs: as :func:`jaxviz.gradient_shap`.

    Returns:
      (N, H, W, 3) attributions.
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    return gradient_shap(model, x, neuron, baselines=baselines, n_samples=n_samples, stdevs=stdevs, key=key,
                         baseline_indices=baseline_indices, noise=noise, alphas=alphas,
                         internal_batch_size=internal_batch_size, multiply_by_inputs=multiply_by_inputs)
