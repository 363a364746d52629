"""The input gradient of one unit of a layer (Captum ``NeuronGradient``)."""

from __future__ import annotations

from jaxviz import scoring
from jaxviz.attribution import _regions
from jaxviz.attribution.saliency import saliency


@scoring.neuron_method
def neuron_gradient(model, x, target, *, layer: str):
    """The gradient of one unit of ``layer``'s output at the input, per image (Captum
    ``NeuronGradient``).

    Args:
      model: a :class:`jaxviz.Model`.
      x: (N, H, W, 3) normalised images.
      target: the unit (Captum's ``neuron_selector``): its indices in ``layer``'s output in
        PyTorch's order — ``(channel, row, column)`` of a convolutional layer, ``(feature,)``
        of a linear one — for every image, or (N, k) one per image.
      layer: the layer (torchvision module path); the forward pass stops after it.

    Returns:
      (N, H, W, 3) gradients.

    References:
      Simonyan, Vedaldi, Zisserman. Deep Inside Convolutional Networks (2014).
    """
    x, neuron = scoring.prepare_neuron(model, x, layer, target)
    # each image's crop around its unit's receptive field: nothing outside it moves the unit
    return _regions.on_unit_crops(lambda v, unit: saliency(model, v, unit, absolute=False), model, x, neuron)
