"""Every architecture jaxviz knows, by torchvision's name, and its description."""

from __future__ import annotations

import functools
import importlib

from jaxviz.choices import ARCHITECTURES, FAMILIES
from jaxviz.errors import InputError
from jaxviz.models import network as _network
from jaxviz.models.architecture import Architecture

_FAMILY_OF = {arch: family for family, archs in FAMILIES.items() for arch in archs}


def check_arch(arch: str) -> str:
    if not isinstance(arch, str) or arch not in _FAMILY_OF:
        raise InputError(f"`arch` must be one of {list(ARCHITECTURES)}, got {arch!r}")
    return arch


def network(arch: str | _network.Network) -> _network.Network:
    """The forward function and declarations of ``arch`` (a network passes through: your own
    model's, :mod:`jaxviz.models.traced`)."""
    return arch if isinstance(arch, _network.Network) else _catalog_network(check_arch(arch))


@functools.cache
def _catalog_network(arch: str) -> _network.Network:
    return importlib.import_module(f"jaxviz.models.families.{_FAMILY_OF[arch]}").network(arch)


@functools.cache
def architecture(arch: str | _network.Network) -> Architecture:
    """The description generic code asks instead of naming an architecture's layers."""
    return Architecture.of(network(arch))
