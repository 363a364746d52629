"""How long ``jaxviz --help`` and ``jaxviz COMMAND --help`` take, wall clock, each a fresh
process as a user starts it (the installed ``jaxviz`` script), beside a bare interpreter and
``import jax`` for scale.  The commands are timed in turns, ``--repeats`` rounds; reported:
median, min and max per command, and whether the target (under 0.5 s) is met by the median
and by the slowest run.

    python -m benchmarks.cli_help [--repeats 15] [--out benchmarks/results/cli-help]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

TARGET_S = 0.5
SCRIPT = Path(sys.executable).with_name("jaxviz")
COMMANDS = {
    "python -c pass (the interpreter alone)": [sys.executable, "-c", "pass"],
    "python -c 'import jax' (for scale)": [sys.executable, "-c", "import jax"],
    "jaxviz --help": [str(SCRIPT), "--help"],
    "jaxviz gradcam --help": [str(SCRIPT), "gradcam", "--help"],
    "jaxviz integrated-gradients --help": [str(SCRIPT), "integrated-gradients", "--help"],
    "jaxviz evaluate --help": [str(SCRIPT), "evaluate", "--help"],
    "jaxviz run --help": [str(SCRIPT), "run", "--help"],
}
TIMED = [name for name in COMMANDS if name.startswith("jaxviz")]


def once(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results/cli-help")
    args = parser.parse_args(argv)
    for command in COMMANDS.values():  # warm the file cache
        once(command)
    times = {name: [] for name in COMMANDS}
    for _ in range(args.repeats):
        for name, command in COMMANDS.items():
            times[name].append(once(command))
    rows = []
    for name, values in times.items():
        row = {"command": name, "median_s": statistics.median(values), "min_s": min(values), "max_s": max(values),
               "runs": len(values)}
        if name in TIMED:
            row["met_by_median"] = row["median_s"] < TARGET_S
            row["met_by_slowest"] = row["max_s"] < TARGET_S
        rows.append(row)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    document = {"date": time.strftime("%Y-%m-%d %H:%M"), "machine": platform.platform(),
                "python": platform.python_version(), "target_s": TARGET_S, "rows": rows}
    (out / "cli-help.json").write_text(json.dumps(document, indent=1) + "\n")
    lines = [f"# jaxviz --help: wall time of a fresh process ({document['date']}, {args.repeats} rounds)", "",
             f"Target: under {TARGET_S} s.", "",
             "| command | median | min | max | met (median / slowest) |", "|---|---|---|---|---|"]
    for row in rows:
        met = (f"{'yes' if row['met_by_median'] else 'no'} / {'yes' if row['met_by_slowest'] else 'no'}"
               if "met_by_median" in row else "")
        lines.append(f"| `{row['command']}` | {row['median_s']:.3f} s | {row['min_s']:.3f} s | {row['max_s']:.3f} s "
                     f"| {met} |")
    (out / "cli-help.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
