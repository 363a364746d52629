"""Root of the ``jaxviz`` command: wires the subcommand groups, maps errors to exit codes."""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading

from jaxviz.cli import batch, classify, common, demo, weights
from jaxviz.errors import JaxvizError, WeightsNotFoundError

GROUPS = (batch, demo, classify, weights)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="jaxviz",
        description="See what an ImageNet CNN looks at, and synthesise images with it.",
        epilog="Exit codes: 0 ok, 1 some inputs failed, 2 usage error, 3 error, 130 interrupted (Ctrl-C), "
               "143 terminated (SIGTERM; 129 SIGHUP).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for group in GROUPS:
        group.register(sub)
    return parser


class Terminated(KeyboardInterrupt):
    """SIGTERM or SIGHUP, handled as Ctrl-C is: pending writes dropped, what is written whole."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


def _terminate(signum, frame):
    raise Terminated(signum)


HANDLED = (signal.SIGTERM, signal.SIGHUP)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    previous = {}
    if threading.current_thread() is threading.main_thread():
        previous = {sig: signal.signal(sig, _terminate) for sig in HANDLED}
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
    except Terminated as stop:
        print(f"jaxviz: terminated ({signal.Signals(stop.signum).name})", file=sys.stderr)
        return 128 + stop.signum
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
        for sig, handler in previous.items():
            signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())
