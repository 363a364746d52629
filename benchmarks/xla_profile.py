"""Where a compiled jaxviz call spends its time, by XLA operation: the profiler's trace of a
few steady calls, each operation's time per call, with its output shape from the optimised
HLO.  Convolutions and dots (XLA:CPU's ``ynn_fusion``) are summed on one line; everything
else is listed by name.  Random weights and images.

    PYTHONPATH=. python -m benchmarks.xla_profile [METHOD ARCH BATCH SIZE CALLS TOP]

e.g. ``deeplift squeezenet1_1 16 224 3 25`` (the defaults).  Run it on a quiet machine:
the numbers are wall-clock times of single-threaded operations.
"""

from __future__ import annotations

import collections
import glob
import gzip
import json
import os
import re
import sys
import tempfile

import jax
import numpy as np

import jaxviz


def _operation_times(trace_dir: str) -> collections.Counter:
    path = glob.glob(os.path.join(trace_dir, "**", "*.trace.json.gz"), recursive=True)[0]
    with gzip.open(path) as file:
        trace = json.load(file)
    events = trace["traceEvents"] if isinstance(trace, dict) else trace
    times = collections.Counter()
    for event in events:
        if event.get("ph") == "X" and not event["name"].startswith("$"):
            times[event["name"]] += event.get("dur", 0)  # microseconds
    return times


def _output_shapes(dump_dir: str) -> dict[str, str]:
    shapes = {}
    for path in glob.glob(os.path.join(dump_dir, "*after_optimizations.txt")):
        with open(path) as file:
            for line in file:
                match = re.match(r"\s*(?:ROOT )?%([\w.\-]+) = (\S+) ", line)
                if match:
                    shapes[match.group(1)] = match.group(2)
    return shapes


def main(method: str = "deeplift", arch: str = "squeezenet1_1", batch: int = 16, size: int = 224, calls: int = 3,
         top: int = 25) -> None:
    model = jaxviz.init_model(jax.random.key(0), arch)
    x = jax.random.normal(jax.random.key(1), (batch, size, size, 3))
    target = np.arange(batch) % model.architecture.num_classes
    function = getattr(jaxviz, method)
    for _ in range(2):  # compiled, then steady
        jax.block_until_ready(function(model, x, target))
    with tempfile.TemporaryDirectory() as trace_dir:
        with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(function(model, x, target))
        times = _operation_times(trace_dir)
    shapes = _output_shapes(os.environ.get("JAXVIZ_PROFILE_DUMP", ""))
    operations = {name: t for name, t in times.items() if name in shapes or name.startswith(("ynn", "while"))}
    library = sum(t for name, t in operations.items() if name.startswith("ynn"))
    total = sum(operations.values())
    print(f"{method}, {arch}, {batch} images at {size}: {total / 1e3 / calls:.1f} ms of operations per call")
    print(f"{library / 1e3 / calls:9.1f} ms  convolutions and dots (ynn_fusion)")
    rest = sorted(((t, name) for name, t in operations.items() if not name.startswith("ynn")), reverse=True)
    for t, name in rest[:top]:
        print(f"{t / 1e3 / calls:9.1f} ms  {name:40s} {shapes.get(name, '')}")


if __name__ == "__main__":
    if "JAXVIZ_PROFILE_DUMP" not in os.environ:  # re-run with XLA dumping the optimised HLO
        dump = tempfile.mkdtemp()
        os.environ["JAXVIZ_PROFILE_DUMP"] = dump
        os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} --xla_dump_to={dump} --xla_dump_hlo_as_text"
        os.execv(sys.executable, [sys.executable, "-m", "benchmarks.xla_profile"] + sys.argv[1:])
    args = sys.argv[1:]
    main(*args[:2], *(int(a) for a in args[2:6]))
