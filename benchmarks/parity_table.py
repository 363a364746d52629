"""The parity errors a test run measured, one row per test function.

    JAXVIZ_PARITY_LOG=/tmp/parity.jsonl make test
    python -m benchmarks.parity_table /tmp/parity.jsonl > benchmarks/results/parity/table.md

Every comparison of ``parity_tests/helpers.assert_close`` and of the float32 criterion
appends one JSON line to the log (``helpers.record``).  A row gives the test function's
largest error relative to its tolerance: the error, that comparison's tolerance, the case
(parameters and label) it came from, and how many comparisons the function made.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def rows(lines):
    """{(file, function): the worst comparison (by error / tolerance), with a count}."""
    worst = {}
    for line in lines:
        entry = json.loads(line)
        path, _, name = entry["test"].partition("::")
        function, _, case = name.partition("[")
        key = (path, function)
        entry["case"] = " ".join(filter(None, (case.rstrip("]"), entry["what"])))
        ratio = entry["error"] / entry["tol"] if entry["tol"] > 0 else float("inf")
        count = worst[key]["count"] + 1 if key in worst else 1
        if key not in worst or ratio > worst[key]["ratio"]:
            worst[key] = {**entry, "ratio": ratio}
        worst[key]["count"] = count
    return worst


def table(worst) -> str:
    out = ["| file | test | comparisons | largest error / tolerance | error | tolerance | criterion | case |",
           "|---|---|---|---|---|---|---|---|"]
    for (path, function), w in sorted(worst.items()):
        case = re.sub(r"\s+", " ", w["case"]).replace("|", "/")
        out.append(f"| {Path(path).name} | {function} | {w['count']} | {w['ratio']:.2g} | {w['error']:.2g} | "
                   f"{w['tol']:.2g} | {w['criterion']} | {case} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="the JSON lines JAXVIZ_PARITY_LOG named")
    args = parser.parse_args(argv)
    sys.stdout.write(table(rows(args.log.read_text().splitlines())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
