"""Root of the ``jaxviz`` command: wires the subcommand groups, maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from jaxviz.cli import batch, classify, common, demo, weights

GROUPS = (batch, demo, classify, weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxviz",
        description="See what an ImageNet CNN looks at, and synthesise images with it.",
        epilog="Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 error, 130 interrupted (Ctrl-C), "
               "143 terminated (SIGTERM).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM, handled as Ctrl-C is: pending writes dropped, what is written is whole."""


def _terminate(signum, frame):
    raise Terminated()


def main(argv: list[str] | None = None) -> int:
    from jaxviz.errors import JaxvizError, WeightsNotFoundError

    parser = build_parser()
    args = parser.parse_args(argv)
    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _terminate)
    try:
        return int(args.func(args) or 0)
    except JaxvizError as err:
        if os.environ.get("JAXVIZ_DEBUG"):
            raise
        common.error(str(err), multiline=isinstance(err, WeightsNotFoundError))
        return common.EXIT_ERROR
    except BrokenPipeError:  # e.g. `jaxviz classify ... | head`
        sys.stderr.close()
        return common.EXIT_OK
    except Terminated:
        print("jaxviz: terminated", file=sys.stderr)
        return common.EXIT_TERMINATED
    except KeyboardInterrupt:
        print("jaxviz: interrupted", file=sys.stderr)
        return common.EXIT_INTERRUPTED
    except OSError as err:  # a file or folder the command could not read or write
        if os.environ.get("JAXVIZ_DEBUG"):
            raise
        where = f" {err.filename}" if err.filename else ""
        common.error(f"cannot use{where}: {err.strerror or err}")
        return common.EXIT_ERROR
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


if __name__ == "__main__":
    sys.exit(main())
