"""DeepLift of one unit of a layer (Captum ``NeuronDeepLift``)."""

from __future__ import annotations

from jaxviz import scoring
from jaxviz.attribution import _paths, _regions
from jaxviz.attribution.deeplift import deeplift


@scoring.neuron_method
def neuron_deeplift(model, x, target, *, layer: str, baselines=None, rule: str = "modules", multiply_by_inputs: bool = True):
    """DeepLift (rescale rule) of one unit of ``layer``'s output (Captum ``NeuronDeepLift``);
    the options are :func:`jaxviz.deeplift`'s.

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target, layer: the unit and its layer, as :func:`jaxviz.neuron_gradient`'s.
      baselines, rule, multiply_by_inputs: as :func:`jaxviz.deeplift`.

    Returns:
      (N, H, W, 3) attributions.

    References:
      Shrikumar, Greenside, Kundaje. Learning Important Features Through Propagating
      Activation Differences (2017).
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    return _regions.on_unit_crops(
        lambda v, unit, b: deeplift(model, v, unit, baselines=b, rule=rule, multiply_by_inputs=multiply_by_inputs),
        model, x, neuron, _paths.broadcast_baselines(baselines, x))
