"""The command line's method registry: how a method declares its options, its batch
computation and its files.  Declarations live in :mod:`jaxviz.cli.attribution_methods`
and :mod:`jaxviz.cli.synthesis_methods`; adding a method to the CLI is one declaration
in one of them.

Options are declared once and serve both the command line (``--n-steps 32``) and job
files (``n_steps = 32``).  ``compute`` maps a padded batch to arrays with a leading
batch axis; ``save`` turns one image's slice into output files (name suffix → bytes) and
manifest extras.  Both are called with only the arguments they name (:func:`call_with`).

The declarations are read to build the parser, so the command line's modules import jax
and the methods inside the functions that compute: ``jaxviz --help`` does not wait for them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from jaxviz.errors import InputError


def positive(name: str, value, minimum=None):
    """``value`` checked: > 0, or >= ``minimum`` when given; ``None`` passes through."""
    if value is None:
        return value
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
        raise InputError(f"`{name}` must be a number, got {value!r}")
    if minimum is None and value <= 0:
        raise InputError(f"`{name}` must be > 0, got {value}")
    if minimum is not None and value < minimum:
        raise InputError(f"`{name}` must be >= {minimum}, got {value}")
    return value


def per_image_keys(seed: int, seeds):
    """One ``jax.random`` key per image: the job's seed folded with the image's own, so
    results do not depend on batching, sharding or process count."""
    import jax
    import jax.numpy as jnp

    base = jax.random.key(seed)
    return jax.vmap(lambda s: jax.random.fold_in(base, s))(jnp.asarray(seeds, jnp.uint32))


def per_image_normal(seed: int, seeds, shape, dtype):
    """One standard-normal draw of ``shape`` per image, keyed by (seed, image seed)."""
    import jax

    return jax.vmap(lambda k: jax.random.normal(k, shape, dtype))(per_image_keys(seed, seeds))


def public_function(name: str) -> str:
    """``name``, checked to be a public jaxviz function's: declarations name the functions they
    call (jaxviz loads them on first use), and a wrong name must fail at import, not when a
    command runs."""
    import jaxviz

    if name not in jaxviz.__all__:
        raise ValueError(f"jaxviz has no public function {name!r}")
    return name


def call_with(function: Callable, **available):
    """Calls ``function`` with the arguments it names, taken from ``available``."""
    names = inspect.signature(function).parameters
    return function(**{name: available[name] for name in names})


@dataclass(frozen=True)
class Option:
    """One option of a method: its flag, type, default, help, and what it is checked against."""

    name: str
    type: type
    default: Any
    help: str
    choices: tuple = ()
    many: bool = False  # a list of values
    kind: str = ""  # "class" or "layer": checked against the architecture before the model loads

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def parse(self, value, where: str = ""):
        """Converts a command-line string or a job-file value, with a clear error."""
        if self.many:
            values = value if isinstance(value, (list, tuple)) else [value]
            return [self._one(v, where) for v in values]
        return self._one(value, where)

    def _one(self, value, where):
        label = f"{where}`{self.name}`"
        if self.type is bool:
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("1", "true", "yes", "on"):
                return True
            if str(value).lower() in ("0", "false", "no", "off"):
                return False
            raise InputError(f"{label} must be true or false, got {value!r}")
        if isinstance(value, bool) and self.type is not bool:
            raise InputError(f"{label} must be {self.type.__name__}, got {value!r}")
        if self.type is int and not isinstance(value, (int, str)):  # 2.7 must not become 2
            raise InputError(f"{label} must be an integer, got {value!r}")
        if self.type is str and not isinstance(value, str):
            raise InputError(f"{label} must be a string, got {value!r}")
        try:
            converted = self.type(value.strip() if isinstance(value, str) and self.type is not str else value)
        except (TypeError, ValueError):
            raise InputError(f"{label} must be {'an integer' if self.type is int else self.type.__name__}, "
                             f"got {value!r}") from None
        if self.type is float and not np.isfinite(converted):
            raise InputError(f"{label} must be finite, got {value!r}")
        if self.choices and converted not in self.choices:
            raise InputError(f"{label} must be one of {', '.join(map(str, self.choices))}; got {value!r}")
        return converted


def _single(options) -> list:
    return [None]


def _unchanged(options: dict, batch: int) -> dict:
    return options


@dataclass(frozen=True)
class Method:
    """One subcommand.

    Attributes:
      compute: ``(model, x, target, seeds, options, variant)`` → dict of (N, ...) arrays;
        it names only the arguments it uses.
      save: ``(image, x, arrays, options, variant, arrays_format, wanted_figures, model)`` →
        (files, manifest extras), for one image; likewise by name.
      inputs: ``"images"``, or ``"classes"``: one unit per class of ``classes(options)``.
      target: ``"any"`` (top-1 when not given), ``"explicit"`` (must be given), ``"none"``.
      variants: options → the outputs each input gets (style: one per style image).
      on_devices: (options, batch) → options, when a batch is sharded over devices.
      finish: (the :class:`~jaxviz.cli.outputs.OutputFolder`, the run's folder) → the path
        of a file it wrote from every record of the run (e.g. a summary table), after the
        job, or None.
    """

    name: str
    summary: str
    options: tuple[Option, ...]
    compute: Callable
    save: Callable
    inputs: str = "images"
    target: str = "any"
    size: int = 224
    examples: str = ""
    check: Callable = field(default=lambda opts: None)
    variants: Callable = _single
    classes: Callable | None = None
    on_devices: Callable = _unchanged
    finish: Callable | None = None

    def defaults(self) -> dict:
        return {o.name: o.default for o in self.options}

    def takes(self, option: str) -> bool:
        return any(o.name == option for o in self.options)
