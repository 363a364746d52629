"""Seconds for a fresh process's first ``jaxviz.init_model(key, arch)`` (compiling included,
XLA's default settings, what a user's script pays), then a second key (compiled), and the
process's peak resident memory.  One architecture per process:

    python benchmarks/results/init-model/time_init.py ARCH
"""

import json
import resource
import sys
import time

import jax

import jaxviz

arch = sys.argv[1]
start = time.perf_counter()
jax.block_until_ready(jaxviz.init_model(jax.random.key(0), arch).params)
first = time.perf_counter() - start
start = time.perf_counter()
jax.block_until_ready(jaxviz.init_model(jax.random.key(1), arch).params)
again = time.perf_counter() - start
peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"arch": arch, "first_s": round(first, 2), "again_s": round(again, 3), "peak_mib": round(peak_mib)}))
