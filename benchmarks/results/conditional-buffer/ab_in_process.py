"""DeepLift with one shared reference: ``layers.expand_reference`` with and without the
``stop_gradient`` on the reference's copies, A/B in one process.

    PYTHONPATH=. python benchmarks/results/conditional-buffer/ab_in_process.py ARCH BATCH ROUNDS

Each variant is swapped in at trace time and compiled once; then the two compiled programs
are called in turn, ``ROUNDS`` times each, so that both see the same state of a noisy
machine (this one switches between two speeds for minutes at a time, about 25 % apart,
which separate processes confuse with the change).  Random weights and images at 224;
prints the largest difference, each variant's median and least, and the median of the
per-round ratios new/old.
"""

from __future__ import annotations

import importlib
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz
from jaxviz.models import layers

deeplift = importlib.import_module("jaxviz.attribution.deeplift")


def expand_reference_before(values):  # the copies' gradient summed back into the reference
    n = values.shape[0] - 1
    return jnp.concatenate([values[:n], jnp.broadcast_to(values[n:], (n,) + values.shape[1:])])


def main(arch: str, batch: str, rounds: str) -> None:
    model = jaxviz.init_model(jax.random.key(0), arch)
    x = jax.random.normal(jax.random.key(1), (int(batch), 224, 224, 3))
    target = jnp.arange(int(batch)) % model.architecture.num_classes
    reference = jnp.zeros((1, 224, 224, 3))
    shared_from = deeplift.shared_reference_start(model, "modules", x.shape[1:])
    today = layers.expand_reference
    compiled = {}
    for name, function in (("old", expand_reference_before), ("new", today)):
        layers.expand_reference = function  # looked up when the network is traced
        jax.clear_caches()
        compiled[name] = deeplift._deeplift.lower(model, x, target, reference, "modules", True, False, None,
                                                  shared_from).compile()
    layers.expand_reference = today
    outputs = {name: np.asarray(c(model, x, target, reference, None)) for name, c in compiled.items()}
    print("largest difference", float(np.abs(outputs["old"] - outputs["new"]).max()))
    times = {name: [] for name in compiled}
    for _ in range(int(rounds)):
        for name, c in compiled.items():
            start = time.perf_counter()
            jax.block_until_ready(c(model, x, target, reference, None))
            times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        print(f"{name} median {np.median(t) * 1e3:.1f} ms, least {min(t) * 1e3:.1f} ms")
    ratio = np.array(times["new"]) / np.array(times["old"])
    print(f"new/old per round: median {np.median(ratio):.3f} (quartiles {np.quantile(ratio, 0.25):.3f}–"
          f"{np.quantile(ratio, 0.75):.3f})")


if __name__ == "__main__":
    main(*sys.argv[1:])
