"""Guided backprop of one unit of a layer (Captum ``NeuronGuidedBackprop``)."""

from __future__ import annotations

from jaxviz import scoring
from jaxviz.attribution import _regions
from jaxviz.attribution.guided_backprop import guided_backprop


@scoring.neuron_method
def neuron_guided_backprop(model, x, target, *, layer: str, rule: str = "modules"):
    """Guided backpropagation from one unit of ``layer``'s output (Captum
    ``NeuronGuidedBackprop``); the ReLUs reached as in :func:`jaxviz.guided_backprop`.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target, layer: the unit and its layer, as :func:`jaxviz.neuron_gradient`'s.
      rule: ``"modules"`` (default, the ``nn.ReLU`` modules) or ``"all"``.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Springenberg et al. Striving for Simplicity: The All Convolutional Net (2015).
      Adebayo et al. Sanity Checks for Saliency Maps (NeurIPS 2018).
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    return _regions.on_unit_crops(lambda v, unit: guided_backprop(model, v, unit, rule=rule), model, x, neuron)
