"""The numerical building blocks of SqueezeNet, written to match PyTorch exactly.

* ``conv2d``: 1×1 stride-1 convolutions are a plain contraction over channels (XLA:CPU runs
  a ``dot`` several times faster than ``conv_general_dilated`` for them); the rest go
  through ``lax.conv_general_dilated``.
* ``relu`` / ``guided_relu``: the standard ReLU (gradient 0 at 0, like PyTorch's
  ``threshold_backward``) and the guided-backprop ReLU, a ``custom_vjp`` whose backward is
  ``1[x>0] · max(g, 0)`` (Captum applies ``relu`` to the already-masked gradient).
* ``max_pool_ceil``: ``MaxPool2d(3, 2, ceil_mode=True)`` with PyTorch's output size and
  −inf padding on the bottom/right, and a ``custom_vjp`` that routes each window's gradient
  to the *first* maximum in row-major window order, as PyTorch's kernel does.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
from jax import lax

from jaxviz.errors import InputError


def conv2d(x, kernel, bias, *, stride: int = 1, padding: int = 0):
    """NHWC convolution with an HWIO kernel, plus bias.

    Args:
      x: (N, H, W, Cin) input.
      kernel: (kh, kw, Cin, Cout) weights.
      bias: (Cout,) bias.
      stride: spatial stride.
      padding: symmetric zero padding on H and W.
    """
    kh, kw = kernel.shape[:2]
    if (kh, kw) == (1, 1) and stride == 1 and padding == 0:
        y = jnp.dot(x, kernel[0, 0])
    else:
        y = lax.conv_general_dilated(
            x,
            kernel,
            window_strides=(stride, stride),
            padding=((padding, padding), (padding, padding)),
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
    return y + bias.reshape(1, 1, 1, -1)


def relu(x):
    """Standard ReLU; its gradient at 0 is 0, like PyTorch's."""
    return jax.nn.relu(x)


@jax.custom_vjp
def guided_relu(x):
    """ReLU whose backward pass is guided backprop's: ``1[x>0] · max(g, 0)``."""
    return jnp.maximum(x, 0)


def _guided_relu_fwd(x):
    return jnp.maximum(x, 0), x > 0


def _guided_relu_bwd(positive, g):
    return (jnp.where(positive, jnp.maximum(g, 0), jnp.zeros_like(g)),)


guided_relu.defvjp(_guided_relu_fwd, _guided_relu_bwd)


def pool_output_size(size: int, kernel: int = 3, stride: int = 2) -> int:
    """Output length of a ceil-mode max pool without padding, as PyTorch computes it.

    Returns 0 or less when PyTorch would refuse the input.
    """
    # PyTorch: div_rtn(size - kernel + (stride - 1), stride) + 1, rounding toward -inf,
    # then drop the last window if it would start past the input.
    out = (size - kernel + stride - 1) // stride + 1
    if out >= 1 and (out - 1) * stride >= size:
        out -= 1
    return out


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """Output length of a convolution (0 or less when the input is too small)."""
    return (size + 2 * padding - kernel) // stride + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2))
def _max_pool(x, kernel: int, stride: int):
    return _max_pool_fwd(x, kernel, stride)[0]


def _pool_pads(x, kernel, stride):
    _, h, w, _ = x.shape
    oh, ow = pool_output_size(h, kernel, stride), pool_output_size(w, kernel, stride)
    if oh < 1 or ow < 1:
        raise InputError(
            f"max-pool input of spatial size {h}×{w} is smaller than its {kernel}×{kernel} window"
        )
    pad_h = max((oh - 1) * stride + kernel - h, 0)
    pad_w = max((ow - 1) * stride + kernel - w, 0)
    return oh, ow, pad_h, pad_w


def _max_pool_fwd(x, kernel, stride):
    oh, ow, pad_h, pad_w = _pool_pads(x, kernel, stride)
    y = lax.reduce_window(
        x,
        -jnp.inf,
        lax.max,
        window_dimensions=(1, kernel, kernel, 1),
        window_strides=(1, stride, stride, 1),
        padding=((0, 0), (0, pad_h), (0, pad_w), (0, 0)),
    )
    return y, (x, y)


def _window_views(xp, oh, ow, kernel, stride):
    """The kernel² strided views of the padded input, in row-major window order."""
    for di in range(kernel):
        for dj in range(kernel):
            view = lax.slice(
                xp,
                (0, di, dj, 0),
                (xp.shape[0], di + stride * (oh - 1) + 1, dj + stride * (ow - 1) + 1, xp.shape[3]),
                (1, stride, stride, 1),
            )
            yield di, dj, view


def _max_pool_bwd(kernel, stride, residuals, g):
    x, y = residuals
    oh, ow, pad_h, pad_w = _pool_pads(x, kernel, stride)
    xp = jnp.pad(x, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), constant_values=-jnp.inf)
    hp, wp = xp.shape[1], xp.shape[2]
    taken = jnp.zeros(y.shape, dtype=bool)
    dxp = jnp.zeros(xp.shape, g.dtype)
    zero = jnp.zeros((), g.dtype)
    for di, dj, view in _window_views(xp, oh, ow, kernel, stride):
        # The first maximum in row-major order gets the whole gradient (PyTorch's rule).
        hit = (view == y) & ~taken
        taken = taken | hit
        routed = jnp.where(hit, g, zero)
        dxp = dxp + lax.pad(
            routed,
            zero,
            (
                (0, 0, 0),
                (di, hp - di - (stride * (oh - 1) + 1), stride - 1),
                (dj, wp - dj - (stride * (ow - 1) + 1), stride - 1),
                (0, 0, 0),
            ),
        )
    return (dxp[:, : x.shape[1], : x.shape[2], :],)


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


def max_pool_ceil(x, kernel: int = 3, stride: int = 2):
    """``torch.nn.MaxPool2d(kernel, stride, ceil_mode=True)`` on an NHWC batch."""
    return _max_pool(x, kernel, stride)
