"""Deconvolution from one unit of a layer (Captum ``NeuronDeconvolution``)."""

from __future__ import annotations

from jaxviz import scoring
from jaxviz.attribution import _regions
from jaxviz.attribution.deconvolution import deconvolution


@scoring.neuron_method
def neuron_deconvolution(model, x, target, *, layer: str, rule: str = "modules"):
    """Deconvolution from one unit of ``layer``'s output (Captum ``NeuronDeconvolution``);
    the ReLUs reached as in :func:`jaxviz.deconvolution`.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target, layer: the unit and its layer, as :func:`jaxviz.neuron_gradient`'s.
      rule: ``"modules"`` (default, the ``nn.ReLU`` modules) or ``"all"``.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Zeiler, Fergus. Visualizing and Understanding Convolutional Networks (2014).
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    return _regions.on_unit_crops(lambda v, unit: deconvolution(model, v, unit, rule=rule), model, x, neuron)
