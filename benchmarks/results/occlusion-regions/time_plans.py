"""Wall time of three successive occlusion plans (`_regions.window_plan`) at 224, a 15×15
window every 8 pixels, in one process: the first probes and compiles, the others repeat
what an occlusion call (one per CLI batch) asks.  Usage: python time_plans.py ARCH..."""

import sys
import time

import jax
import numpy as np

import jaxviz
from jaxviz.attribution import _regions

for arch in sys.argv[1:]:
    model = jaxviz.load_model() if arch == "squeezenet1_1" else jaxviz.init_model(jax.random.key(0), arch)
    seconds = []
    for _ in range(3):
        start = time.perf_counter()
        plan = _regions.window_plan(model, (224, 224, 3), (15, 15, 3), (8, 8, 3))
        seconds.append(time.perf_counter() - start)
    print(f"{arch}: {plan.layer if plan else None}, " + ", ".join(f"{s:.2f}" for s in seconds) + " s", flush=True)
