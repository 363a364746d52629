"""The jaxviz error family.

Every error jaxviz raises on purpose derives from :class:`JaxvizError`, and also from the
built-in exception a caller would expect (``ValueError``, ``TypeError``), so both
``except JaxvizError`` and ``except ValueError`` work.  Messages name the argument, what was
expected and what was given.
"""

from __future__ import annotations


class JaxvizError(Exception):
    """Base class of all errors raised by jaxviz."""


class InputError(JaxvizError, ValueError):
    """An argument has the wrong shape or an invalid value (NaN, out-of-range target, ...)."""


class InputTypeError(JaxvizError, TypeError):
    """An argument has the wrong type or dtype."""


class UnknownLayerError(JaxvizError, ValueError):
    """A layer name that the model does not have."""


class WeightsError(JaxvizError, ValueError):
    """A weight file or state_dict that cannot be used: unreadable, refused, wrong keys or shapes."""


class ArchitectureMismatchError(WeightsError):
    """Weights that belong to another architecture than the one asked for."""


class WeightsNotFoundError(WeightsError):
    """No weights could be found in any of the places jaxviz looks."""


class ImageError(JaxvizError, ValueError):
    """An image file that cannot be read or used."""


__all__ = [
    "ArchitectureMismatchError",
    "ImageError",
    "InputError",
    "InputTypeError",
    "JaxvizError",
    "UnknownLayerError",
    "WeightsError",
    "WeightsNotFoundError",
]
