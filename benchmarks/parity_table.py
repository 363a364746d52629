"""The parity errors a test run measured, one row per comparison of each test case.

    JAXVIZ_PARITY_LOG=/tmp/parity.jsonl make test
    python -m benchmarks.parity_table /tmp/parity.jsonl > table.md

Every comparison of ``parity_tests/helpers.assert_close`` and of the float32 criterion
(and the family tests' worst layers) appends one JSON line to the log
(``helpers.record``).  A row is one comparison (its label without the parameters) of one
parametrised test case: its largest error relative to its tolerance, that error and
tolerance, the layer it came from where the test names one, and how many comparisons the
row holds.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path


def rows(lines):
    """{(file, function, parameters, label): the worst comparison (by error / tolerance),
    with a count}.

    The label is the comparison's own text without the test's parameters (a test of
    several methods gives a row per method and parameter set)."""
    worst = {}
    for line in lines:
        entry = json.loads(line)
        path, _, name = entry["test"].partition("::")
        function, _, case = name.partition("[")
        case = case.rstrip("]")
        parameters = set(re.split(r"[-\s]", case))
        label = " ".join(word for word in entry["what"].split() if word not in parameters)
        key = (path, function, case, label)
        entry["where"] = entry.get("where", "")
        ratio = entry["error"] / entry["tol"] if entry["tol"] > 0 else float("inf")
        count = worst[key]["count"] + 1 if key in worst else 1
        if key not in worst or ratio > worst[key]["ratio"]:
            worst[key] = {**entry, "ratio": ratio}
        worst[key]["count"] = count
    return worst


def table(worst) -> str:
    out = ["| file | test | parameters | comparison | count | largest error / tolerance | error | tolerance | criterion "
           "| where |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for (path, function, case, label), w in sorted(worst.items()):
        case, label, where = (re.sub(r"\s+", " ", v).replace("|", "/") for v in (case, label, w["where"]))
        out.append(f"| {Path(path).name} | {function} | {case} | {label} | {w['count']} | {w['ratio']:.2g} | "
                   f"{w['error']:.2g} | {w['tol']:.2g} | {w['criterion']} | {where} |")
    return "\n".join(out) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("log", type=Path, help="the JSON lines JAXVIZ_PARITY_LOG named")
    args = parser.parse_args(argv)
    sys.stdout.write(table(rows(args.log.read_text().splitlines())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
