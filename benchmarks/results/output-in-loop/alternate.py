"""The A/B scripts' shared part: two programs of the same arguments, their largest
difference, then called in turn ``rounds`` times each (both see the same state of a noisy
machine); prints each one's median and least, and the median of the per-round ratios."""

from __future__ import annotations

import time

import jax
import numpy as np


def alternate(programs: dict, args: tuple, rounds: int) -> None:
    (old, first), (new, second) = programs.items()
    outputs = [np.asarray(program(*args)) for program in (first, second)]
    print("largest difference", float(np.abs(outputs[0] - outputs[1]).max()))
    times = {name: [] for name in programs}
    for _ in range(rounds):
        for name, program in programs.items():
            start = time.perf_counter()
            jax.block_until_ready(program(*args))
            times[name].append(time.perf_counter() - start)
    for name, t in times.items():
        print(f"{name} median {np.median(t) * 1e3:.1f} ms, least {min(t) * 1e3:.1f} ms")
    print(f"{new}/{old} per round: median {np.median(np.array(times[new]) / np.array(times[old])):.3f}")
