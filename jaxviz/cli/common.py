"""Options and error handling shared by every subcommand.

Exit codes: 0 success · 1 some inputs failed (the rest completed) · 2 usage error ·
3 a jaxviz error stopped the command (bad weights, bad input, output folder in use) ·
130 interrupted (Ctrl-C) · 143 terminated (SIGTERM; 129 for SIGHUP).
"""

from __future__ import annotations

import argparse
import os
import sys

import jaxviz
from jaxviz._io import shown
from jaxviz.choices import ARCHITECTURES

DEFAULT_ARCH = "squeezenet1_1"
EXIT_OK, EXIT_PARTIAL, EXIT_USAGE, EXIT_ERROR, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    # no argparse default: a job file's `arch` applies unless --arch is given
    group.add_argument("--arch", default=None, choices=ARCHITECTURES, help=f"architecture (default {DEFAULT_ARCH})")
    group.add_argument(
        "--weights",
        metavar="PATH",
        help="weight file (.pth/.npz/.safetensors); default: $JAXVIZ_WEIGHTS, then the caches",
    )


def load_model_from_args(args):
    return jaxviz.load_model(args.arch or DEFAULT_ARCH, args.weights)


def error(message: str, *, multiline: bool = False) -> None:
    """One line on stderr (control characters in names escaped, so no line can be
    forged); ``multiline`` keeps the message's own line breaks."""
    text = "\n".join(shown(line) for line in message.split("\n")) if multiline else shown(message)
    print(f"jaxviz: error: {text}", file=sys.stderr)
    if not os.environ.get("JAXVIZ_DEBUG"):
        print("  (set JAXVIZ_DEBUG=1 for the traceback)", file=sys.stderr)


def progress(message: str, *, quiet: bool = False) -> None:
    if not quiet:
        print(message, file=sys.stderr, flush=True)
