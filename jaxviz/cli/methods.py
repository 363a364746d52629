"""Every method the ``jaxviz`` command runs, by subcommand name: the declarations of
:mod:`jaxviz.cli.attribution_methods`, :mod:`jaxviz.cli.synthesis_methods` and
:mod:`jaxviz.cli.evaluation`."""

from __future__ import annotations

from jaxviz.cli import attribution_methods, evaluation, synthesis_methods
from jaxviz.cli.registry import Method, Option

METHODS: dict[str, Method] = {m.name: m for m in (*attribution_methods.DECLARED, *synthesis_methods.DECLARED,
                                                  *evaluation.DECLARED)}

__all__ = ["METHODS", "Method", "Option"]
