"""XLA:CPU's YNNPACK fusions on and off, alternating in one process (medians of 5).

    PYTHONPATH=. JAXVIZ_WEIGHTS=... python benchmarks/results/ynn-fusions/ab.py

Each program is compiled twice, with ``jax.jit``'s defaults and with
``compiler_options={"xla_cpu_experimental_ynn_fusion_type": ""}``, and the two run in turn.
"""

import os
import time

import jax
import jax.numpy as jnp
import numpy as np

import jaxviz
from benchmarks import run as harness

OFF = {"xla_cpu_experimental_ynn_fusion_type": ""}


def gradient(model, x, y):
    return jax.grad(lambda v: model.apply(model.params, v, target=y).sum())(x)


def forward(model, x, y):
    return model.apply(model.params, x)


def path_of_gradients(model, x, y):  # W4's work: 50 input gradients of the batch, summed
    def step(total, alpha):
        return total + gradient(model, alpha * x, y), None
    return jax.lax.scan(step, jnp.zeros_like(x), jnp.linspace(0.02, 1.0, 50))[0]


def main():
    rng = np.random.default_rng(0)
    course, labels = harness.course_images(5)
    cases = [("squeezenet1_1", path_of_gradients, 5), ("squeezenet1_1", gradient, 5),
             ("squeezenet1_1", forward, 32), ("resnet50", gradient, 4), ("resnet50", forward, 8),
             ("mobilenet_v2", gradient, 5), ("vgg16", forward, 4), ("resnet18", gradient, 8)]
    for arch, f, n in cases:
        if arch == "squeezenet1_1":
            model = jaxviz.load_model(weights=os.environ["JAXVIZ_WEIGHTS"])
        else:
            model = jaxviz.init_model(jax.random.key(0), arch)
        if n == 5 and arch == "squeezenet1_1":
            x, y = jnp.asarray(jaxviz.preprocess(course)), jnp.asarray(labels)
        else:
            x, y = jnp.asarray(rng.normal(size=(n, 224, 224, 3)).astype(np.float32)), jnp.arange(n)
        default, off = jax.jit(f), jax.jit(f, compiler_options=OFF)
        jax.block_until_ready(default(model, x, y))
        jax.block_until_ready(off(model, x, y))
        times = {default: [], off: []}
        for _ in range(5):
            for g, ts in times.items():
                t = time.perf_counter()
                jax.block_until_ready(g(model, x, y))
                ts.append(time.perf_counter() - t)
        a, b = np.median(times[default]), np.median(times[off])
        print(f"{arch} {f.__name__} {n} images: default {a:.3f} s, without YNNPACK fusions {b:.3f} s, "
              f"{a / b:.2f}x", flush=True)


if __name__ == "__main__":
    main()
