"""torchvision's CNN families, each written once against :class:`jaxviz.models.network.Forward`."""
