"""Every method the ``jaxviz`` command runs, by subcommand name: the declarations of
:mod:`jaxviz.cli.attribution_methods` and :mod:`jaxviz.cli.synthesis_methods`."""

from __future__ import annotations

from jaxviz.cli import attribution_methods, synthesis_methods
from jaxviz.cli.registry import Method, Option

METHODS: dict[str, Method] = {m.name: m for m in (*attribution_methods.DECLARED, *synthesis_methods.DECLARED)}

__all__ = ["METHODS", "Method", "Option"]
