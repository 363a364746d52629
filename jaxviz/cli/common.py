"""Options and error handling shared by every subcommand.

Exit codes: 0 success · 1 some inputs failed (the rest completed) · 2 usage error ·
3 a jaxviz error stopped the command (bad weights, bad input) · 130 interrupted.
"""

from __future__ import annotations

import argparse
import os
import sys

EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--arch", default="squeezenet1_1", choices=["squeezenet1_1", "squeezenet1_0"])
    group.add_argument(
        "--weights",
        metavar="PATH",
        help="weight file (.pth/.npz/.safetensors); default: $JAXVIZ_WEIGHTS, then the caches",
    )


def load_model_from_args(args):
    import jaxviz

    return jaxviz.load_model(args.arch, args.weights)


def error(message: str) -> None:
    """One line on stderr; JAXVIZ_DEBUG=1 shows the traceback instead."""
    print(f"jaxviz: error: {message}", file=sys.stderr)
    if not os.environ.get("JAXVIZ_DEBUG"):
        print("  (set JAXVIZ_DEBUG=1 for the traceback)", file=sys.stderr)


def progress(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
