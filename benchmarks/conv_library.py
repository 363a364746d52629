"""XLA:CPU's convolution library against today's im2col and ``dot`` (not kept, 2026-12-02;
benchmarks/results/conv-library/notes.md).

``loop``: two 3×3 convolutions' input gradient, 16 images in chunks of 4 inside
``lax.map``, by autodiff of ``conv_general_dilated`` and by a ``custom_vjp`` that convolves
the cotangent with the flipped kernel in HWIO order.

``ab ARCH BATCH [ROUNDS]``: today's ``layers.conv2d`` against the one in
``results/conv-library/conv-general-dilated.patch`` (applied to a temporary copy of
layers.py), alternating in one process with ``jax.clear_caches()`` between: a forward pass
and a saliency map of random images at 224, random weights; the fastest of 3 calls per
round, the median over rounds, the first call (compile) apart.

    PYTHONPATH=. python -m benchmarks.conv_library loop
    PYTHONPATH=. python -m benchmarks.conv_library ab vgg16 4 3
"""

from __future__ import annotations

import importlib.util
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxviz
from jaxviz.models import layers

HERE = Path(__file__).resolve().parent
PATCH = HERE / "results" / "conv-library" / "conv-general-dilated.patch"
NHWC = ("NHWC", "HWIO", "NHWC")


def _seconds(program, *args, calls: int = 5, warm: bool = False, summary=statistics.median) -> float:
    """``summary`` (the median) of ``calls`` timed calls, after one untimed call unless ``warm``."""
    if not warm:
        jax.block_until_ready(program(*args))
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        jax.block_until_ready(program(*args))
        times.append(time.perf_counter() - start)
    return summary(times)


def _conv(x, kernel):
    return lax.conv_general_dilated(x, kernel, (1, 1), ((1, 1), (1, 1)), dimension_numbers=NHWC)


@jax.custom_vjp
def _conv_flipped_backward(x, kernel):
    return _conv(x, kernel)


def _fwd(x, kernel):
    return _conv(x, kernel), (x, kernel)


def _bwd(residuals, g):
    x, kernel = residuals
    return _conv(g, jnp.flip(kernel, (0, 1)).swapaxes(2, 3)), jax.vjp(lambda k: _conv(x, k), kernel)[1](g)[0]


_conv_flipped_backward.defvjp(_fwd, _bwd)


def loop() -> None:
    rng = np.random.default_rng(0)
    x = jnp.asarray(rng.standard_normal((16, 55, 55, 16), np.float32))
    k1 = jnp.asarray(rng.standard_normal((3, 3, 16, 64), np.float32))
    k2 = jnp.asarray(rng.standard_normal((3, 3, 64, 16), np.float32))
    for name, conv in (("autodiff", _conv), ("flipped HWIO kernel", _conv_flipped_backward)):
        def gradient(v, conv=conv):
            return jax.grad(lambda u: jnp.sum(jnp.tanh(conv(jax.nn.relu(conv(u, k1)), k2))))(v)

        whole = jax.jit(gradient)
        chunked = jax.jit(lambda v, gradient=gradient: lax.map(gradient, v.reshape((4, 4) + v.shape[1:])))
        print(f"{name}: whole batch {_seconds(whole, x) * 1e3:.1f} ms, "
              f"in lax.map {_seconds(chunked, x) * 1e3:.1f} ms", flush=True)


def _patched_layers():
    """layers.py with the patch applied, imported as a module of its own."""
    root = Path(tempfile.mkdtemp())
    (root / "jaxviz" / "models").mkdir(parents=True)
    shutil.copy(HERE.parent / "jaxviz" / "models" / "layers.py", root / "jaxviz" / "models" / "layers.py")
    subprocess.run(["git", "apply", "--include=jaxviz/models/layers.py", str(PATCH)], cwd=root, check=True)
    spec = importlib.util.spec_from_file_location("layers_patched", root / "jaxviz" / "models" / "layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def ab(arch: str, batch: int, rounds: int = 3) -> None:
    convolutions = {"im2col": layers.conv2d, "library": _patched_layers().conv2d}
    model = jaxviz.init_model(jax.random.key(0), arch)
    x = jax.random.normal(jax.random.key(1), (batch, 224, 224, 3))
    target = jnp.arange(batch) % 1000
    programs = {"forward": lambda: jax.jit(lambda v: model.apply(model.params, v)),
                "saliency": lambda: jax.jit(lambda v: jaxviz.saliency(model, v, target))}
    times, firsts = {}, {}
    try:
        for r in range(rounds):
            for which in ("im2col", "library") if r % 2 == 0 else ("library", "im2col"):
                jax.clear_caches()
                layers.conv2d = convolutions[which]  # the network looks it up when it traces
                for name, make in programs.items():
                    program = make()
                    start = time.perf_counter()
                    jax.block_until_ready(program(x))
                    firsts.setdefault((name, which), []).append(time.perf_counter() - start)
                    times.setdefault((name, which), []).append(_seconds(program, x, calls=3, warm=True, summary=min))
    finally:
        layers.conv2d = convolutions["im2col"]
    for name in programs:
        then, now = (statistics.median(times[name, w]) for w in ("im2col", "library"))
        print(f"{arch} batch {batch} {name}: im2col {then * 1e3:.0f} ms, library {now * 1e3:.0f} ms, "
              f"{then / now:.2f}x; first call {statistics.median(firsts[name, 'im2col']):.1f} -> "
              f"{statistics.median(firsts[name, 'library']):.1f} s", flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "loop":
        loop()
    else:
        ab(sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:5]))
