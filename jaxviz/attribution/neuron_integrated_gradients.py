"""Integrated Gradients of one unit of a layer (Captum ``NeuronIntegratedGradients``)."""

from __future__ import annotations

from jaxviz import scoring
from jaxviz.attribution import _paths, _regions
from jaxviz.attribution.integrated_gradients import integrated_gradients


@scoring.neuron_method
def neuron_integrated_gradients(model, x, target, *, layer: str, baselines=None, n_steps: int = 50,
                                method: str = "gausslegendre",
                                internal_batch_size: int | None = _paths.DEFAULT_INTERNAL_BATCH_SIZE):
    """Integrated Gradients of one unit of ``layer``'s output (Captum
    ``NeuronIntegratedGradients``); the options are :func:`jaxviz.integrated_gradients`'.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target, layer: the unit and its layer, as :func:`jaxviz.neuron_gradient`'s.
      baselines, n_steps, method, internal_batch_size: as :func:`jaxviz.integrated_gradients`.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Sundararajan, Taly, Yan. Axiomatic Attribution for Deep Networks (2017).
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    return _regions.on_unit_crops(
        lambda v, unit, b: integrated_gradients(model, v, unit, baselines=b, n_steps=n_steps, method=method,
                                                internal_batch_size=internal_batch_size),
        model, x, neuron, _paths.broadcast_baselines(baselines, x))
