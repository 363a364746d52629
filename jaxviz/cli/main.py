"""Root of the ``jaxviz`` command: wires the subcommand groups, maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import sys

from jaxviz.cli import batch, classify, common, demo, weights

GROUPS = (batch, demo, classify, weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxviz",
        description="See what an ImageNet CNN looks at, and synthesise images with it.",
        epilog="Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 error, 130 interrupted.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    from jaxviz.errors import JaxvizError

    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except JaxvizError as err:
        if os.environ.get("JAXVIZ_DEBUG"):
            raise
        common.error(str(err))
        return common.EXIT_ERROR
    except BrokenPipeError:  # e.g. `jaxviz classify ... | head`
        sys.stderr.close()
        return common.EXIT_OK
    except KeyboardInterrupt:
        print("jaxviz: interrupted", file=sys.stderr)
        return common.EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
