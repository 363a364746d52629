"""XLA's convolution library and its derivatives against today's im2col and ``dot``
(benchmarks/results/conv-library/notes.md).

``loop``: two 3×3 convolutions' input gradient, 16 images in chunks of 4 inside
``lax.map``, by autodiff of ``conv_general_dilated`` and by a ``custom_vjp`` that convolves
the cotangent with the flipped kernel in HWIO order.

``ab ARCH BATCH [ROUNDS]``: today's convolutions (values from the library, derivatives
from im2col and ``dot``; the 3-channel stems im2col throughout) against XLA's own
derivatives of the library's convolution, without and with the stems, alternating in one
process with ``jax.clear_caches()`` between: a forward pass and a saliency map of random
images at 224, random weights; the fastest of 3 calls per round, the median over rounds,
the first call (compile) apart.  (The library with a flipped-kernel ``custom_vjp``, tried
on 2026-12-02, is ``results/conv-library/conv-general-dilated.patch``.)

    PYTHONPATH=. python -m benchmarks.conv_library loop
    PYTHONPATH=. python -m benchmarks.conv_library ab vgg16 4 3
"""

from __future__ import annotations

import statistics
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

import jaxviz
from jaxviz.models import layers

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


def _native_convolution(x, kernel, stride: int):
    """``layers._convolution`` without its custom JVP: XLA differentiates the library's
    convolution itself (its transposed convolution, cuDNN's on a GPU)."""
    return lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=NHWC)


# name → (layers._convolution, layers.LIBRARY_MIN_CONTRACTION) while that variant traces
VARIANTS = {
    "today": (layers._convolution, layers.LIBRARY_MIN_CONTRACTION),
    "xla-transpose": (_native_convolution, layers.LIBRARY_MIN_CONTRACTION),
    "xla-transpose, stems too": (_native_convolution, 0),
}


def _relative_difference(a, b) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def ab(arch: str, batch: int, rounds: int = 3) -> None:
    model = jaxviz.init_model(jax.random.key(0), arch)
    x = jax.random.normal(jax.random.key(1), (batch, 224, 224, 3))
    target = jnp.arange(batch) % 1000
    programs = {"forward": lambda: jax.jit(lambda v: model.apply(model.params, v)),
                "saliency": lambda: jax.jit(lambda v: jaxviz.saliency(model, v, target))}
    times, firsts, results = {}, {}, {}
    try:
        for r in range(rounds):
            for which in VARIANTS if r % 2 == 0 else reversed(VARIANTS):
                jax.clear_caches()
                # the network looks these up when it traces
                layers._convolution, layers.LIBRARY_MIN_CONTRACTION = VARIANTS[which]
                for name, make in programs.items():
                    program = make()
                    start = time.perf_counter()
                    results[name, which] = np.asarray(jax.block_until_ready(program(x)))
                    firsts.setdefault((name, which), []).append(time.perf_counter() - start)
                    times.setdefault((name, which), []).append(_seconds(program, x, calls=3, warm=True, summary=min))
    finally:
        layers._convolution, layers.LIBRARY_MIN_CONTRACTION = VARIANTS["today"]
    for name in programs:
        then = statistics.median(times[name, "today"])
        print(f"{arch} batch {batch} {name} on {jax.default_backend()}: today {then * 1e3:.1f} ms "
              f"(first call {statistics.median(firsts[name, 'today']):.1f} s)" + "".join(
                  f"; {w} {statistics.median(times[name, w]) * 1e3:.1f} ms, {then / statistics.median(times[name, w]):.2f}x "
                  f"(first call {statistics.median(firsts[name, w]):.1f} s; max|difference| / max|today| "
                  f"{_relative_difference(results[name, w], results[name, 'today']):.1e})"
                  for w in VARIANTS if w != "today"),
              flush=True)


if __name__ == "__main__":
    if sys.argv[1] == "loop":
        loop()
    else:
        ab(sys.argv[2], int(sys.argv[3]), *map(int, sys.argv[4:5]))
