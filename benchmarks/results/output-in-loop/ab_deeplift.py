"""DeepLift with one shared reference: (x − b)·m after the chunked loop (before) or on each chunk
inside it (now: ``deeplift.multipliers(multiply_by_inputs=True)``), A/B in one process.

    PYTHONPATH=. python benchmarks/results/output-in-loop/ab_deeplift.py ARCH BATCH ROUNDS
"""

import importlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz

D = importlib.import_module("jaxviz.attribution.deeplift")
arch, n, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
model = jaxviz.init_model(jax.random.key(0), arch)
x = jax.random.normal(jax.random.key(1), (n, 224, 224, 3)); t = jnp.arange(n) % 1000
b = jnp.zeros((1, 224, 224, 3))
sf = D.shared_reference_start(model, "modules", x.shape[1:])
after = jax.jit(lambda model, x, t: (x - b) * D.multipliers(model, x, b, t, "modules", sf))
inside = jax.jit(lambda model, x, t: D.multipliers(model, x, b, t, "modules", sf, multiply_by_inputs=True))
fs = {"after": after, "inside": inside}
print("largest difference", float(jnp.abs(after(model, x, t) - inside(model, x, t)).max()))
times = {k: [] for k in fs}
for _ in range(rounds):
    for k, f in fs.items():
        s = time.perf_counter(); jax.block_until_ready(f(model, x, t)); times[k].append(time.perf_counter() - s)
for k, v in times.items(): print(k, f"median {np.median(v)*1e3:.1f} min {min(v)*1e3:.1f}")
print("inside/after", np.median(np.array(times["inside"]) / np.array(times["after"])))
