"""The numerical building blocks of the networks, written to match PyTorch exactly.

* ``conv2d``: 1×1 stride-1 convolutions are a ``dot`` over channels.  The others, in
  float32, take their values from XLA's convolution library, differentiated or not, and
  their derivatives from im2col (the kh·kw shifted windows gathered along the channel
  axis) and a ``dot``: autodiff transposes those into the gradient, where the library's
  own transpose is slow inside ``lax.map``.  float64 and the small contractions (the
  3-channel stems) are im2col throughout (benchmarks/results/conv-library/notes.md,
  design-notes.md).
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
from jax.custom_batching import custom_vmap
from jax.custom_derivatives import SymbolicZero

from jaxviz.errors import InputError


# Below this many multiply-adds per output (kh·kw·Cin: the 3-channel stems) im2col and
# ``dot`` beat the library; float64 (the parity tests' precision) stays on im2col
# (benchmarks/results/conv-library/notes.md).
LIBRARY_MIN_CONTRACTION = 64


def conv2d(x, kernel, bias, *, stride: int = 1, padding: int = 0):
    """NHWC convolution with an HWIO kernel, plus bias.

    Args:
      x: (N, H, W, Cin) input.
      kernel: (kh, kw, Cin, Cout) weights.
      bias: (Cout,) bias.
      stride: spatial stride.
      padding: symmetric zero padding on H and W.
    """
    kh, kw, cin, cout = kernel.shape
    if (kh, kw) == (1, 1) and stride == 1 and padding == 0:
        y = jnp.dot(x, kernel.reshape(cin, cout))
    elif x.dtype == jnp.float64 or kh * kw * cin < LIBRARY_MIN_CONTRACTION:
        y = _im2col_conv(x, kernel, stride, padding)
    else:  # padded beforehand: a border position's taps summed in the interior's order
        y = _convolution(_padded_for_windows(x, kh, kw, stride, padding)[0], kernel, stride)
    return y if bias is None else y + bias.reshape(1, 1, 1, -1)


def _im2col_conv(x, kernel, stride: int, padding: int):
    kh, kw, cin, cout = kernel.shape
    return jnp.dot(patches(x, kh, kw, stride=stride, padding=padding), kernel.reshape(kh * kw * cin, cout))


@functools.partial(jax.custom_jvp, nondiff_argnums=(2,))
def _convolution(x, kernel, stride: int):
    """An unpadded convolution whose values are XLA's convolution library's (faster than
    im2col on the wide 3×3 convolutions and the 7×7 stems) and whose tangents are im2col
    and ``dot``'s, linear in the tangent, so that a gradient is im2col's transpose
    (benchmarks/results/conv-library/notes.md)."""
    return lax.conv_general_dilated(x, kernel, (stride, stride), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))


@functools.partial(_convolution.defjvp, symbolic_zeros=True)
def _convolution_jvp(stride, primals, tangents):
    x, kernel = primals
    dx, dkernel = tangents
    y = _convolution(x, kernel, stride)
    # (a zero tangent, the kernel's under an input gradient, costs no convolution)
    terms = [_im2col_conv(a, b, stride, 0) for a, b, tangent in ((dx, kernel, dx), (x, dkernel, dkernel))
             if not isinstance(tangent, SymbolicZero)]
    return y, (functools.reduce(jnp.add, terms) if terms else jnp.zeros_like(y))


def target_channel_conv1x1(x, kernel, bias, target):
    """One output channel per image of a 1×1 convolution: (N, H, W, Cin) → (N, H, W), image n's
    channel ``target[n]`` of ``conv2d(x, kernel, bias)`` (a batched matrix-vector product)."""
    columns = jnp.take(kernel.reshape(kernel.shape[-2], kernel.shape[-1]), target, axis=1)  # (Cin, N)
    return jnp.einsum("nhwc,cn->nhw", x, columns) + bias[target][:, None, None]


def patches(x, kh: int, kw: int, *, stride: int = 1, padding: int = 0):
    """(N, H, W, C) → (N, H', W', kh·kw·C): each output position's window, row-major
    window order with channels innermost (the order of an HWIO kernel reshaped to 2-D).

    Gathered in two steps, the kw column offsets and then the kh row offsets of those
    columns: kh + kw slices instead of kh·kw, each a kernel XLA compiles on its own
    (benchmarks/results/design-notes.md).
    """
    x, out_h, out_w = _padded_for_windows(x, kh, kw, stride, padding)
    n, height, _, channels = x.shape
    columns = [lax.slice(x, (0, 0, j, 0), (n, height, j + stride * (out_w - 1) + 1, channels), (1, 1, stride, 1))
               for j in range(kw)]
    columns = jnp.concatenate(columns, axis=-1) if kw > 1 else columns[0]
    rows = [lax.slice(columns, (0, i, 0, 0), (n, i + stride * (out_h - 1) + 1, out_w, columns.shape[-1]),
                      (1, stride, 1, 1))
            for i in range(kh)]
    return jnp.concatenate(rows, axis=-1) if kh > 1 else rows[0]


def conv_windows(x, kh: int, kw: int, *, stride: int = 1, padding: int = 0) -> list:
    """The kh·kw strided views of the zero-padded input a convolution reads, each
    (N, H', W', C), in row-major window order."""
    x, out_h, out_w = _padded_for_windows(x, kh, kw, stride, padding)
    return [
        lax.slice(x, (0, i, j, 0), (x.shape[0], i + stride * (out_h - 1) + 1, j + stride * (out_w - 1) + 1,
                                     x.shape[3]), (1, stride, stride, 1))
        for i in range(kh)
        for j in range(kw)
    ]


def _padded_for_windows(x, kh: int, kw: int, stride: int, padding: int):
    """(the zero-padded input, H', W') of a kh×kw convolution; an input smaller than one
    window is an InputError."""
    if padding:
        x = jnp.pad(x, ((0, 0), (padding, padding), (padding, padding), (0, 0)))
    height, width = x.shape[1:3]
    out_h, out_w = (height - kh) // stride + 1, (width - kw) // stride + 1
    if out_h < 1 or out_w < 1:
        raise InputError(f"a {kh}×{kw} convolution needs at least {kh}×{kw} inputs, got {height}×{width}")
    return x, out_h, out_w


def _computed_once(g):
    """``g``, computed once.

    XLA:CPU fuses an elementwise producer into every consumer.  A backward pass that reads
    its cotangent at kh·kw shifted positions (a pool's routing or average) would therefore
    recompute the cotangent's producer -- a chain of ReLU masks and BatchNorms, summed over
    DenseNet's concatenated layers -- kh·kw times per element.  The operand of a conditional
    is a buffer, and XLA keeps a conditional whose predicate it cannot know: here whether
    g's first element is a number, with ``g + 0`` (a reduction, the older way to a buffer)
    in the branch for NaN.  (``lax.optimization_barrier`` says the same, but XLA:CPU drops
    it before fusion; a float reduction alone is handed to YNNPACK, which is slow at it:
    benchmarks/results/conditional-buffer/notes.md.)  Integers keep the reduction, XLA's
    own loop, and so do other platforms than the CPU.  The conditional's tangent is the
    tangent itself, so that it transposes.
    """
    if not jnp.issubdtype(g.dtype, jnp.floating) or g.size == 0:
        return _summed_with_zero(g)
    # elsewhere a conditional's predicate goes to the host: there the reduction stays
    return lax.platform_dependent(g, cpu=_buffered, default=_summed_with_zero)


@jax.custom_jvp
def _buffered(g):
    return _conditional_buffer(g)


_buffered.defjvp(lambda primals, tangents: (_buffered(*primals), tangents[0]))


@custom_vmap
def _conditional_buffer(g):
    first = g.reshape(-1)[0]
    return lax.cond((first <= 0) | (first > 0), lambda a: a, _summed_with_zero, g)


@_conditional_buffer.def_vmap
def _conditional_buffer_vmap(axis_size, in_batched, g):
    # the whole batch through one conditional: a predicate per vmapped element would
    # make it a select, which XLA fuses again
    return _conditional_buffer(g), in_batched[0]


def _summed_with_zero(g):
    return jnp.sum(jnp.stack([g, jnp.zeros_like(g)], axis=-1), axis=-1)


def _padded_once(a, value, rows, cols):
    """(N, H, W, C) ``a`` padded with ``value`` by (top, bottom) ``rows`` and (left, right)
    ``cols``, into a buffer whose shifted slices the taps of a backward pass read (a pad
    per tap, fused into their sum, tests bounds per tap and element, which XLA:CPU runs
    slower: benchmarks/results/conditional-buffer/notes.md)."""
    return _computed_once(lax.pad(a, jnp.array(value, a.dtype), ((0, 0, 0), (*rows, 0), (*cols, 0), (0, 0, 0))))


def _reading_cotangent_once(forward):
    """``forward`` (a function of arrays) with autodiff's own backward pass, taken of the
    cotangent :func:`_computed_once`: for backward passes that read it at kh·kw shifted
    positions (a depthwise convolution's, an average pool's)."""
    function = jax.custom_vjp(forward)
    function.defvjp(lambda *arrays: (forward(*arrays), arrays),
                    lambda arrays, g: jax.vjp(forward, *arrays)[1](_computed_once(g)))
    return function


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


@jax.custom_vjp
def relu6(x):
    """``nn.ReLU6`` (hardtanh 0..6); its gradient is 0 at 0 and 6, like PyTorch's."""
    return jnp.clip(x, 0, 6)


relu6.defvjp(lambda x: (jnp.clip(x, 0, 6), (x > 0) & (x < 6)),
             lambda inside, g: (jnp.where(inside, g, jnp.zeros_like(g)),))


@jax.custom_vjp
def guided_relu6(x):
    """ReLU6 whose backward pass is guided: ``1[0<x<6] · max(g, 0)``."""
    return jnp.clip(x, 0, 6)


guided_relu6.defvjp(lambda x: (jnp.clip(x, 0, 6), (x > 0) & (x < 6)),
                    lambda inside, g: (jnp.where(inside, jnp.maximum(g, 0), jnp.zeros_like(g)),))


def _hardswish_grad(x):
    # PyTorch's hardswish_backward: 0 below −3, x/3 + 1/2 up to 3 (inclusive), 1 above
    return jnp.where(x < -3, 0.0, jnp.where(x <= 3, x / 3 + 0.5, 1.0)).astype(x.dtype)


def _hardswish(x):
    return x * jnp.clip(x + 3, 0, 6) / 6


@jax.custom_vjp
def hardswish(x):
    """``nn.Hardswish``: x·relu6(x + 3)/6, with PyTorch's gradient."""
    return _hardswish(x)


hardswish.defvjp(lambda x: (_hardswish(x), x), lambda x, g: (g * _hardswish_grad(x),))


@jax.custom_vjp
def guided_hardswish(x):
    """Hardswish whose backward pass is guided: ``max(hardswish'(x)·g, 0)``."""
    return _hardswish(x)


guided_hardswish.defvjp(lambda x: (_hardswish(x), x), lambda x, g: (jnp.maximum(g * _hardswish_grad(x), 0),))


@jax.custom_vjp
def hardsigmoid(x):
    """``nn.Hardsigmoid``: relu6(x + 3)/6, gradient 1/6 strictly inside (−3, 3) as PyTorch's."""
    return jnp.clip(x + 3, 0, 6) / 6


hardsigmoid.defvjp(lambda x: (jnp.clip(x + 3, 0, 6) / 6, (x > -3) & (x < 3)),
                   lambda inside, g: (jnp.where(inside, g / 6, jnp.zeros_like(g)),))


# ---------------------------------------------------------------- backward rules
# The same forward values with another backward pass: what guided backprop, deconvolution
# and DeepLift change in a network, chosen per activation by ``Forward`` (no hooks).


def _with_backward(forward, backward):
    """``forward`` whose vector-Jacobian product is ``backward(x, g)``."""
    function = jax.custom_vjp(forward)
    function.defvjp(lambda x: (forward(x), x), lambda x, g: (backward(x, g),))
    return function


def _deconvolution(forward):
    # the deconvnet's reverse ReLU: the upstream gradient's positive part, whatever the input
    return _with_backward(forward, lambda x, g: jnp.maximum(g, 0))


# Captum's ``DeepLift(eps=1e-10)``: below this input difference the plain gradient is used
DEEPLIFT_EPS = 1e-10


def _halves(values):
    """A DeepLift batch of inputs followed by as many references, as (2, n, …): the inputs,
    then the references."""
    n = values.shape[0] // 2
    if values.shape[0] != 2 * n:
        raise InputError("the DeepLift rule needs a batch of inputs followed by as many references, "
                         f"got an odd batch of {values.shape[0]}")
    return values.reshape((2, n) + values.shape[1:])


def _for_both_halves(per_pair, shape):
    """Each pair's (n, …) value for both its halves, a DeepLift batch of ``shape`` (2n, …).

    A broadcast, not a concatenation: XLA:CPU fuses either into its readers, but reads the
    concatenation row by row, and the DeepLift backward pass of SqueezeNet took 1.5× as
    long (benchmarks/results/captum_methods/deeplift-rules/)."""
    return jnp.broadcast_to(per_pair[None], (2,) + per_pair.shape).reshape(shape)


def _reference_differences(values, shared: bool = False):
    """A DeepLift batch is inputs followed by their references: each half's difference from
    the other's counterpart, input − reference, for both halves.  ``shared``: inputs
    followed by one reference for all of them; its own row gets no difference (its
    backward pass is never read, see :func:`collapse_references`)."""
    if shared:  # the reference's own row is zero
        return values - values[-1:]
    halves = _halves(values)
    return _for_both_halves(halves[0] - halves[1], values.shape)


def _over_differences(numerator, delta_in, plain):
    """``numerator / Δin``, or ``plain`` (each half's own gradient) where |Δin| <
    :data:`DEEPLIFT_EPS`: how every DeepLift rule divides by its input difference."""
    same = jnp.abs(delta_in) < DEEPLIFT_EPS
    return jnp.where(same, plain, numerator / jnp.where(same, 1, delta_in))


def _rescale(forward, derivative, shared: bool = False):
    """DeepLift's rescale rule: the multiplier Δout/Δin in place of the derivative, both
    halves of the batch sharing the pair's multiplier (Captum's ``nonlinear``); ``shared``:
    on a batch of inputs followed by one reference."""

    def backward(x, g):
        delta_in = _reference_differences(x, shared)
        delta_out = _reference_differences(forward(x), shared)
        return _over_differences(g * delta_out, delta_in, g * derivative(x))

    return _with_backward(forward, backward)


def rescale_pool(pool):
    """A max-pool ``pool`` (x ↦ y, differentiable) with DeepLift's max-pool rule, on a
    batch of inputs followed by their references.

    Each pair's output difference is split at the larger of the two maxima: the part
    above the reference's goes back to the input's maximum, the rest to the reference's,
    both summed and divided by the input difference (Captum's ``maxpool``).  Where two
    overlapping windows share a maximum their contributions add, as in any gradient;
    Captum's ``max_unpool2d`` keeps only one of them (its result there is undefined).
    """

    def backward(x, g):
        y, vjp = jax.vjp(pool, x)
        return _max_pool_rule(x, y, g, lambda split, plain: (vjp(split)[0], vjp(plain)[0]))

    return _with_backward(pool, backward)


def _max_pool_rule(x, y, g, route):
    """DeepLift's max-pool rule from the pool's input ``x``, output ``y`` and upstream
    ``g``; ``route(a, b)`` sends two output cotangents back through the pool's maxima."""
    inputs, references = _halves(y)
    larger = jnp.maximum(inputs, references)
    routed, plain = route(g * jnp.stack([larger - references, inputs - larger]).reshape(y.shape), g)
    routed = _halves(routed)
    return _over_differences(_for_both_halves(routed[0] + routed[1], x.shape), _reference_differences(x), plain)


def _relu_forward(x):
    return jnp.maximum(x, 0)


def _relu6_forward(x):
    return jnp.clip(x, 0, 6)


def _rescale_rules(shared: bool):
    """The rescale rule at each activation kind, on pairs or (``shared``) on inputs followed
    by one reference (where the pairs have been collapsed: :func:`collapse_references`)."""
    return {
        "relu": _rescale(_relu_forward, lambda x: (x > 0).astype(x.dtype), shared),
        "relu6": _rescale(_relu6_forward, lambda x: ((x > 0) & (x < 6)).astype(x.dtype), shared),
        "hardswish": _rescale(_hardswish, _hardswish_grad, shared),
    }


# {rule: {activation kind: the activation with that rule's backward pass}}
BACKWARD_RULES = {
    "guided": {"relu": guided_relu, "relu6": guided_relu6, "hardswish": guided_hardswish},
    "deconvolution": {"relu": _deconvolution(_relu_forward), "relu6": _deconvolution(_relu6_forward),
                      "hardswish": _deconvolution(_hardswish)},
    "deeplift": _rescale_rules(shared=False),
    "deeplift_shared": _rescale_rules(shared=True),
}


@jax.custom_vjp
def collapse_references(values):
    """A DeepLift batch of inputs followed by as many copies of one reference, as the inputs
    followed by that reference once (what ``"deeplift_shared"`` takes).

    Its backward pass gives each reference copy its input's gradient: after the last
    max-pool, where the rescale rule's multipliers are shared by each pair and nothing else
    is nonlinear, the two halves of a DeepLift batch carry the same gradient (the max-pool
    rule below reads the reference's).  The shared row's own gradient is dropped.
    """
    n = values.shape[0] // 2
    return values[: n + 1]


def _collapse_fwd(values):
    return collapse_references(values), None


def _collapse_bwd(_, g):
    return (jnp.concatenate([g[:-1], g[:-1]]),)


collapse_references.defvjp(_collapse_fwd, _collapse_bwd)


def expand_reference(values):
    """Inputs followed by one reference, as the inputs followed by a copy of it for each.

    The copies pass no gradient back to the reference: nothing reads a shared reference's
    gradient (:func:`collapse_references` drops it), and the sum over the copies would be
    a float reduction, which XLA:CPU hands to YNNPACK, slow at it
    (benchmarks/results/conditional-buffer/notes.md)."""
    n = values.shape[0] - 1
    return jnp.concatenate([values[:n], jnp.broadcast_to(lax.stop_gradient(values[n:]), (n,) + values.shape[1:])])


def pool_output_size(size: int, kernel: int = 3, stride: int = 2, padding: int = 0, ceil_mode: bool = True) -> int:
    """Output length of a max or average pool, as PyTorch computes it.

    Returns 0 or less when PyTorch would refuse the input.
    """
    # PyTorch: div_rtn(size + 2p - kernel + (ceil ? stride - 1 : 0), stride) + 1, rounding
    # toward -inf; in ceil mode the last window is dropped if it would start in the padding.
    span = size + 2 * padding - kernel
    out = (span + (stride - 1 if ceil_mode else 0)) // stride + 1
    if ceil_mode and out >= 1 and (out - 1) * stride >= size + padding:
        out -= 1
    return out


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0, dilation: int = 1) -> int:
    """Output length of a convolution (0 or less when the input is too small)."""
    return (size + 2 * padding - dilation * (kernel - 1) - 1) // stride + 1


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _max_pool(x, kernel: int, stride: int, padding: int, ceil_mode: bool):
    # Not differentiated: the maximum of the kernel² strided views, one elementwise pass
    # that XLA:CPU runs faster than ``reduce_window`` (the same values: max is exact;
    # benchmarks/results/design-notes.md).
    # Under differentiation ``_max_pool_fwd`` finds each window's first maximum too.
    _, _, _, views = _padded_windows(x, kernel, stride, padding, ceil_mode)
    return functools.reduce(jnp.maximum, (view for _, _, view in views))


def _pool_pads(shape, kernel, stride, padding, ceil_mode):
    _, h, w, _ = shape
    oh = pool_output_size(h, kernel, stride, padding, ceil_mode)
    ow = pool_output_size(w, kernel, stride, padding, ceil_mode)
    if oh < 1 or ow < 1:
        raise InputError(
            f"max-pool input of spatial size {h}×{w} is smaller than its {kernel}×{kernel} window"
        )
    # −inf padding: `padding` before, and after as far as the last window reaches
    pad_h = max((oh - 1) * stride + kernel - h - padding, 0)
    pad_w = max((ow - 1) * stride + kernel - w - padding, 0)
    return oh, ow, pad_h, pad_w


def _max_pool_fwd(x, kernel, stride, padding, ceil_mode):
    # the maximum and the tap of each window's first maximum, in one pass over the
    # kernel² views: the backward pass routes by the taps (DeepLift's rule also reads x, y)
    y, first = _first_maxima(x, kernel, stride, padding, ceil_mode)
    return y, (x, y, first)


def _first_maxima(x, kernel, stride, padding, ceil_mode):
    """Each window's maximum, and the row-major index of its first maximum (PyTorch routes
    the gradient there) as a float padded with −1 for :func:`_route_to_first_maxima`: a
    running strict maximum over the taps, so a later tap equal to the maximum does not
    take it.  (A NaN is passed over unless it comes first.)

    The taps are padded here, into a buffer that the backward pass reads at every tap
    (XLA would otherwise fuse in, and redo, the whole search), and as floats, whose buffer
    is a conditional's operand rather than an integer reduction
    (benchmarks/results/output-in-loop/notes.md)."""
    padded_shape, oh, ow, views = _padded_windows(x, kernel, stride, padding, ceil_mode)
    y, first = views[0][2], jnp.zeros(views[0][2].shape, jnp.float32)
    for tap, (_, _, view) in enumerate(views[1:], 1):
        larger = view > y
        y = jnp.where(larger, view, y)
        first = jnp.where(larger, jnp.float32(tap), first)
    return y, _padded_for_routing(first, -1, _routing_frame(padded_shape, oh, ow, kernel, stride))


def _padded_windows(x, kernel, stride, padding, ceil_mode):
    """The −inf-padded input's kernel² strided views, in row-major window order.

    Returns (padded shape, oh, ow, [(di, dj, view)]), each view (N, oh, ow, C).
    """
    oh, ow, pad_h, pad_w = _pool_pads(x.shape, kernel, stride, padding, ceil_mode)
    xp = jnp.pad(x, ((0, 0), (padding, pad_h), (padding, pad_w), (0, 0)), constant_values=-jnp.inf)
    views = [
        (di, dj, lax.slice(xp, (0, di, dj, 0),
                           (xp.shape[0], di + stride * (oh - 1) + 1, dj + stride * (ow - 1) + 1, xp.shape[3]),
                           (1, stride, stride, 1)))
        for di in range(kernel)
        for dj in range(kernel)
    ]
    return xp.shape, oh, ow, views


def _max_pool_bwd(kernel, stride, padding, ceil_mode, residuals, g):
    x, _, first = residuals
    return (_route_to_first_maxima(x.shape, first, g, kernel, stride, padding, ceil_mode),)


def _route_to_first_maxima(shape, first, g, kernel, stride, padding, ceil_mode):
    """Each window's gradient ``g`` sent to its first maximum (``first``: its tap, padded,
    from :func:`_first_maxima`) in an input of ``shape``.  ``g`` may hold several
    cotangents side by side on the channel axis (k·C channels), all routed in one pass."""
    n, h, w, c = shape
    oh, ow, pad_h, pad_w = _pool_pads(shape, kernel, stride, padding, ceil_mode)
    padded_shape = (n, h + padding + pad_h, w + padding + pad_w, c)
    copies = g.shape[-1] // c
    if copies > 1:
        first = jnp.concatenate([first] * copies, axis=-1)
    zero = jnp.zeros((), g.dtype)
    most, rows, cols = _routing_frame(padded_shape, oh, ow, kernel, stride)
    g = _padded_for_routing(g, 0, (most, rows, cols))

    def shifted(di, dj, m, k):  # tap (di, dj)'s routed gradient moved down m rows and right k columns
        window = (slice(None), slice(most - m, most - m + rows), slice(most - k, most - k + cols))
        return jnp.where(first[window] == di * kernel + dj, g[window], zero)  # taps in row-major order

    return _scatter_windows(shifted, tuple(shape[:-1]) + g.shape[-1:], padded_shape, oh, ow, kernel, stride, padding,
                            g.dtype)


def _routing_frame(padded_shape, oh, ow, kernel, stride):
    """(the largest shift of a tap at output resolution, rows, cols of each stride phase):
    how far :func:`_route_to_first_maxima` reads around the (N, oh, ow, C) arrays it pads."""
    return ((kernel - 1) // stride, *_phase_extent(padded_shape, oh, ow, kernel, stride))


def _padded_for_routing(a, value, frame):
    """(N, oh, ow, C) ``a`` padded with ``value`` into the buffer whose shifted slices
    :func:`_route_to_first_maxima` reads (the cotangent, and the first maxima's taps);
    ``frame``: :func:`_routing_frame`'s."""
    most, rows, cols = frame
    return _padded_once(a, value, (most, rows - a.shape[1]), (most, cols - a.shape[2]))


def _phase_extent(padded_shape, oh, ow, kernel, stride):
    """(rows, cols) of each stride phase in :func:`_scatter_windows` (phase 0 is the longest)."""
    return (max(-(-padded_shape[1] // stride), oh + (kernel - 1) // stride),
            max(-(-padded_shape[2] // stride), ow + (kernel - 1) // stride))


def _scatter_windows(shifted, shape, padded_shape, oh, ow, kernel, stride, padding, dtype):
    """Sums each window tap's (N, oh, ow, C) gradient into the input positions it came from.
    ``shifted(di, dj, m, k)``: tap (di, dj)'s gradient moved down m rows and right k
    columns, (N, rows, cols, C) (:func:`_phase_extent`).

    Input row ``i = stride·a + p`` is reached by the taps ``di ≡ p (mod stride)`` at output
    row ``a − (di − p)/stride``; so each of the stride² phases of the input is a sum of a
    few shifted tap arrays at output resolution.  The phases interleave as a broadcast
    select into (N, rows, stride, cols, stride, C), whose reshape is the input layout.
    XLA:CPU fuses all of this into one vectorised pass.  Written with ``concatenate``
    (stacking the phases) the same fusion was not vectorised, and nine full-size padded
    adds were split into separate passes (benchmarks/results/design-notes.md).
    """
    n, height, width, channels = shape
    rows, cols = _phase_extent(padded_shape, oh, ow, kernel, stride)
    zero = jnp.zeros((), dtype)
    row_phase = lax.broadcasted_iota(jnp.int32, (1, 1, stride, 1, 1, 1), 2)
    col_phase = lax.broadcasted_iota(jnp.int32, (1, 1, 1, 1, stride, 1), 4)
    full = jnp.zeros((n, rows, stride, cols, stride, channels), zero.dtype)
    for p in range(stride):
        for q in range(stride):
            phase = None
            for di in range(p, kernel, stride):
                for dj in range(q, kernel, stride):
                    tap = shifted(di, dj, (di - p) // stride, (dj - q) // stride)
                    phase = tap if phase is None else phase + tap
            if phase is not None:
                here = (row_phase == p) & (col_phase == q)
                full = full + jnp.where(here, phase[:, :, None, :, None, :], zero)
    full = full.reshape(n, rows * stride, cols * stride, channels)
    return full[:, padding:padding + height, padding:padding + width, :]


_max_pool.defvjp(_max_pool_fwd, _max_pool_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _rescale_max_pool(x, kernel, stride, padding, ceil_mode):
    return _max_pool(x, kernel, stride, padding, ceil_mode)


def _rescale_max_pool_bwd(kernel, stride, padding, ceil_mode, residuals, g):
    # rescale_pool's rule with the pool's own residuals: the maxima are found once, and
    # the two cotangents routed together (side by side on the channel axis), instead of a
    # forward pass and two routings in the backward pass
    x, y, first = residuals
    channels = y.shape[-1]

    def route(split, plain):
        both = _route_to_first_maxima(x.shape, first, jnp.concatenate([split, plain], axis=-1), kernel, stride,
                                      padding, ceil_mode)
        return both[..., :channels], both[..., channels:]

    return (_max_pool_rule(x, y, g, route),)


_rescale_max_pool.defvjp(_max_pool_fwd, _rescale_max_pool_bwd)


def rescale_max_pool(x, kernel: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
    """:func:`max_pool` with DeepLift's rule (:func:`rescale_pool`, the same values)."""
    stride = kernel if stride is None else stride
    return _rescale_max_pool(x, kernel, stride, padding, bool(ceil_mode))


@functools.partial(jax.custom_vjp, nondiff_argnums=(1, 2, 3, 4))
def _pairing_max_pool(x, kernel, stride, padding, ceil_mode):
    return expand_reference(_max_pool(x, kernel, stride, padding, ceil_mode))


def _pairing_max_pool_fwd(x, kernel, stride, padding, ceil_mode):
    y, residuals = _max_pool_fwd(x, kernel, stride, padding, ceil_mode)
    return expand_reference(y), residuals


def _pairing_max_pool_bwd(kernel, stride, padding, ceil_mode, residuals, g):
    # _max_pool_rule for the inputs' half alone: below the first max-pool nothing reads a
    # reference's gradient, so the shared reference's row gets zero
    x, y, first = residuals
    n, channels = x.shape[0] - 1, y.shape[-1]
    larger = jnp.maximum(y[:n], y[n:])
    shape = (n,) + x.shape[1:]

    def route(g, first):
        return _route_to_first_maxima(shape, first, g, kernel, stride, padding, ceil_mode)

    # the inputs' split and plain cotangents routed together (side by side on the channel axis)
    both = route(jnp.concatenate([g[:n] * (larger - y[n:]), g[:n]], axis=-1), first[:n])
    from_references = route(g[n:] * (y[:n] - larger), jnp.broadcast_to(first[n:], (n,) + first.shape[1:]))
    dx = _over_differences(both[..., :channels] + from_references, x[:n] - x[n:], both[..., channels:])
    return (jnp.concatenate([dx, jnp.zeros_like(x[n:])]),)


_pairing_max_pool.defvjp(_pairing_max_pool_fwd, _pairing_max_pool_bwd)


def pairing_max_pool(x, kernel: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
    """:func:`rescale_max_pool` where a DeepLift pass with one shared reference forms its
    pairs: inputs followed by that reference in, the pairs out (the inputs' maxima, then a
    copy of the reference's for each, :func:`expand_reference`).  The same values and
    inputs' gradients as :func:`expand_reference` followed by :func:`rescale_max_pool`, with
    each window searched once per row and no rule computed for the copies."""
    stride = kernel if stride is None else stride
    return _pairing_max_pool(x, kernel, stride, padding, bool(ceil_mode))


def max_pool(x, kernel: int, stride: int | None = None, padding: int = 0, ceil_mode: bool = False):
    """``torch.nn.MaxPool2d(kernel, stride, padding, ceil_mode=...)`` on an NHWC batch; the
    gradient goes to each window's first maximum in row-major order, as PyTorch's does."""
    stride = kernel if stride is None else stride
    return _max_pool(x, kernel, stride, padding, bool(ceil_mode))


def max_pool_ceil(x, kernel: int = 3, stride: int = 2):
    """``torch.nn.MaxPool2d(kernel, stride, ceil_mode=True)`` on an NHWC batch."""
    return max_pool(x, kernel, stride, 0, True)


def avg_pool(x, kernel: int, stride: int | None = None):
    """``torch.nn.AvgPool2d(kernel, stride)`` (no padding, floor mode) on an NHWC batch."""
    stride = kernel if stride is None else stride
    return _reading_cotangent_once(lambda a: _avg_pool_taps(a, kernel, stride))(x)


def _avg_pool_taps(x, kernel: int, stride: int):
    _, h, w, _ = x.shape
    oh, ow = pool_output_size(h, kernel, stride, 0, False), pool_output_size(w, kernel, stride, 0, False)
    if oh < 1 or ow < 1:
        raise InputError(f"average-pool input of spatial size {h}×{w} is smaller than its {kernel}×{kernel} window")
    total = functools.reduce(jnp.add, (
        lax.slice(x, (0, i, j, 0), (x.shape[0], i + stride * (oh - 1) + 1, j + stride * (ow - 1) + 1, x.shape[3]),
                  (1, stride, stride, 1))
        for i in range(kernel) for j in range(kernel)))
    return total / (kernel * kernel)


def _adaptive_weights(size: int, out: int, dtype):
    # PyTorch's bins: [floor(i·size/out), ceil((i+1)·size/out))
    import numpy as np

    weights = np.zeros((out, size))
    for i in range(out):
        start, end = (i * size) // out, -(-((i + 1) * size) // out)
        weights[i, start:end] = 1.0 / (end - start)
    return jnp.asarray(weights, dtype)


def adaptive_avg_pool(x, output_size: int | tuple[int, int]):
    """``torch.nn.AdaptiveAvgPool2d(output_size)`` on an NHWC batch."""
    oh, ow = (output_size, output_size) if isinstance(output_size, int) else output_size
    _, h, w, _ = x.shape
    if (oh, ow) == (1, 1):
        return jnp.mean(x, axis=(1, 2), keepdims=True)
    if (oh, ow) == (h, w):
        return x
    return jnp.einsum("ih,nhwc,jw->nijc", _adaptive_weights(h, oh, x.dtype), x, _adaptive_weights(w, ow, x.dtype))


def batch_norm(x, scale, bias, mean, var, eps: float):
    """Eval-mode ``BatchNorm2d`` (running statistics) over the last axis."""
    shape = (1,) * (x.ndim - 1) + (-1,)
    factor = scale * lax.rsqrt(var + jnp.asarray(eps, var.dtype))
    return (x - mean.reshape(shape)) * factor.reshape(shape) + bias.reshape(shape)


def linear(x, kernel, bias=None):
    """``nn.Linear`` with an (in, out) kernel."""
    y = jnp.dot(x, kernel)
    return y if bias is None else y + bias.reshape(1, -1)


def target_column_linear(x, kernel, bias, target):
    """Image n's output ``target[n]`` of ``linear(x, kernel, bias)``, (N,)."""
    y = jnp.einsum("ni,in->n", x, jnp.take(kernel, target, axis=1))
    return y if bias is None else y + bias[target]


def _depthwise_taps(x, kernel, stride: int, padding: int):
    kh, kw, _, cout = kernel.shape
    windows = conv_windows(x, kh, kw, stride=stride, padding=padding)
    taps = kernel.reshape(kh * kw, 1, 1, 1, cout)
    return functools.reduce(jnp.add, (window * taps[k] for k, window in enumerate(windows)))


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _depthwise_stride_1(x, kernel, padding: int):
    return _depthwise_taps(x, kernel, 1, padding)


def _depthwise_stride_1_fwd(x, kernel, padding):
    return _depthwise_taps(x, kernel, 1, padding), (x, kernel)


def _depthwise_stride_1_bwd(padding, residuals, g):
    """The input gradient as the forward pass is computed: the flipped kernel's taps over
    slices of the cotangent, zero-padded once (autodiff's transpose pads each tap's
    product on its own)."""
    x, kernel = residuals
    kh, kw = kernel.shape[:2]
    rows, cols = kh - 1 - padding, kw - 1 - padding
    dx = _depthwise_taps(_padded_once(g, 0, (rows, rows), (cols, cols)), kernel[::-1, ::-1], 1, 0)
    (dkernel,) = jax.vjp(lambda b: _depthwise_taps(x, b, 1, padding), kernel)[1](g)
    return dx, dkernel


_depthwise_stride_1.defvjp(_depthwise_stride_1_fwd, _depthwise_stride_1_bwd)


def grouped_conv2d(x, kernel, bias, *, stride: int = 1, padding: int = 0, groups: int = 1):
    """NHWC convolution with ``groups`` groups (kernel (kh, kw, Cin/groups, Cout)).

    A depthwise convolution (one input channel per group, Cout = Cin) is a sum of kh·kw
    shifted, scaled views: elementwise work that XLA fuses into one pass.
    """
    kh, kw, cin_group, cout = kernel.shape
    if groups == 1:
        y = conv2d(x, kernel, None, stride=stride, padding=padding)
    elif cin_group == 1 and cout == x.shape[-1]:
        # Its backward pass reads the cotangent once: otherwise XLA fuses the cotangent's
        # producer -- the next layer's ReLU6 mask, which recomputes these taps -- into each
        # of the kh·kw shifted products (MobileNetV2's input gradient took twice torch's
        # time).  XLA's transposed convolution in its place was faster on some batches and
        # 5x slower on others, 8x in float64 (benchmarks/results/architectures/notes.md).
        if stride == 1:
            y = _depthwise_stride_1(x, kernel, padding)
        else:
            y = _reading_cotangent_once(lambda a, b: _depthwise_taps(a, b, stride, padding))(x, kernel)
    else:
        if x.shape[1] + 2 * padding < kh or x.shape[2] + 2 * padding < kw:
            raise InputError(f"a {kh}×{kw} convolution needs at least {kh}×{kw} inputs, got {x.shape[1]}×{x.shape[2]}")
        y = lax.conv_general_dilated(x, kernel, (stride, stride), ((padding, padding), (padding, padding)),
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=groups)
    return y if bias is None else y + bias.reshape(1, 1, 1, -1)
