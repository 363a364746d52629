"""The one forward-pass machinery every architecture shares.

An architecture is written as a plain function of a :class:`Forward` and the input, in
torchvision's module order, calling ``f.conv("layer1.0.conv1", x, ...)``, ``f.bn(...)``,
``f.relu(...)`` and ``f.output("layer1.0", x)`` for a container's output.  Every call names
the torchvision module whose forward hook would see that value; the :class:`Forward` does the
rest, once for all architectures:

* ``capture``: returns the named outputs, in one pass;
* ``perturb``: adds an array to a named output (how layer gradients are taken);
* stops tracing after the last output it needs, so nothing past it is computed;
* ``guided``: the backward rule of the activations (guided backprop, deconvolution,
  DeepLift's rescale rule, which also changes the max-pools), or LRP's rules at every layer
  (:mod:`jaxviz.models.relevance`);
* ``target``: evaluates the class layer for each image's own class alone;
* initialisation: listing a network records each parameter's (torchvision's) scheme, which
  :func:`init_params` draws.

A module called more than once in a forward pass (ResNet's ``relu`` in each block) is
addressed by its last call, the value a hook's last firing sees.
"""

from __future__ import annotations

import functools
import math
import zlib
from dataclasses import dataclass, field
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.choices import GUIDED_RULES
from jaxviz.errors import InputError
from jaxviz.models import layers, relevance

# the backward rules an activation can take (``layers.BACKWARD_RULES``)
BACKWARD_RULES = ("guided", "deconvolution", "deeplift")
NONNEGATIVE_ACTIVATIONS = ("relu", "relu6")  # their outputs are never negative


class _Stop(Exception):
    """Raised inside the trace once every requested output has been seen."""


def _fans(shape):
    if len(shape) == 4:  # HWIO
        receptive = shape[0] * shape[1]
        return shape[2] * receptive, shape[3] * receptive
    return shape[0], shape[1]  # (in, out)


DRAWN_FAMILIES = ("uniform", "normal", "trunc_normal")


def initial_distribution(scheme: str, shape) -> tuple[str, float]:
    """torchvision's initialisation ``scheme`` of a parameter of ``shape`` (HWIO kernels,
    (in, out) matrices) as ``(family, scale)``: ``("uniform", bound)``, ``("normal", std)``,
    ``("trunc_normal", std)`` (cut at ±2 absolute, as torchvision's GoogLeNet cuts), or the
    constant ``("zeros", 0)`` / ``("ones", 0)``."""
    if scheme in ("zeros", "ones"):
        return scheme, 0.0
    if scheme in ("default", "default_zero_bias"):  # PyTorch's kaiming_uniform_(a=√5): bound 1/√fan_in
        return "uniform", 1.0 / math.sqrt(_fans(shape)[0])
    if scheme == "kaiming_uniform":  # a=0, relu gain
        return "uniform", math.sqrt(6.0 / _fans(shape)[0])
    if scheme in ("kaiming_normal_fan_in", "kaiming_normal_fan_out"):
        return "normal", math.sqrt(2.0 / _fans(shape)[scheme.endswith("out")])
    family, _, value = scheme.partition(":")
    if family in DRAWN_FAMILIES and value:  # "normal:0.01", "uniform:0.125"
        return family, float(value)
    raise ValueError(f"unknown initialisation {scheme!r}")


def _draw(family: str, key, scale, *, size: int, dtype):
    """``size`` values of ``family`` at ``scale`` from ``key`` (jax.random's own draws, whose
    i-th value depends on the key and i alone)."""
    if family == "uniform":
        return jax.random.uniform(key, (size,), dtype, -scale, scale)
    if family == "normal":
        return scale * jax.random.normal(key, (size,), dtype)
    return scale * jax.random.truncated_normal(key, -2.0 / scale, 2.0 / scale, (size,), dtype)


class Forward:
    """One forward pass's bookkeeping; architectures call its layer methods in order."""

    def __init__(self, params, *, capture=(), perturb=None, replace=None, guided=False, target=None,
                 class_layer=None, last_call=None, stop_after=None, creates_params=False):
        self.params = params
        self.wanted = frozenset(capture)
        self.perturb = dict(perturb or {})
        self.replace = dict(replace or {})
        # ("deeplift", scope, layer): inputs and one shared reference, as pairs from the first
        # max-pool to ``layer`` (see shared_reference_layers)
        self.shared_from = guided[2] if guided and len(guided) == 3 else None
        self.guided = ("deeplift_shared", guided[1]) if self.shared_from is not None else guided
        self.lrp = guided[1] if guided and guided[0] == "lrp" else None  # a relevance.Composite
        self._lrp_layers = 0  # convolutions and linear layers met so far (the first has its own rule)
        self._last_conv = None  # (its output, how to recompute it) for merging a BatchNorm
        # under LRP, the values known never to be negative, by id (kept alive here so that no id
        # is reused): a sign-split rule skips the terms of a non-negative input's negative part
        self._nonnegative: dict[int, jax.Array] = {}
        self.target = target
        self.class_layer = class_layer
        self.last_call = last_call  # name → index of its last call (None: every call)
        self.stop_after = stop_after
        # listing a network jaxviz initialises: each parameter's (name, leaf, shape, family,
        # scale) in order of creation, its value a placeholder (only shapes are traced)
        self.creates_params = creates_params
        self.param_inits: list[tuple[str, str, tuple[int, ...], str, float]] = []
        self.outputs = {}
        self.calls: list[str] = []  # every named output, in call order
        self.shapes: dict[str, tuple[int, ...]] = {}  # each name's output shape
        self.activations: list[tuple[int, str | None, str]] = []  # (call index, name, kind)
        self.max_pools: list[int] = []  # each max-pool's call index
        self.gates: list[int] = []  # after each hardsigmoid, the call index of the product it gates
        self.biases: dict[str, float | None] = {}  # convolutions with a bias (None), BatchNorms (their eps)
        self.bias_values: dict = {}  # a traced network's biases, (C,) each (see record_bias)

    # ------------------------------------------------------------------ bookkeeping

    def output(self, name: str, value):
        """Records ``name``'s output; returns it (replaced, then perturbed, when asked)."""
        index = len(self.calls)
        self.calls.append(name)
        self.shapes[name] = tuple(value.shape)
        if self.last_call is None or self.last_call.get(name) == index:
            if name in self.replace:
                value = self.replace[name]
            if name == self.shared_from and self.guided[0] == "deeplift":
                self.guided = ("deeplift_shared", self.guided[1])
                value = layers.collapse_references(value)
            if name in self.perturb:
                value = value + self.perturb[name]
            if name in self.wanted:
                self.outputs[name] = value
        if self.stop_after is not None and index >= self.stop_after:
            raise _Stop
        return value

    def param(self, name: str, leaf: str, shape, init: str):
        """``name``'s parameter ``leaf``; ``init`` names its initialisation (see
        :func:`initial_distribution`)."""
        if not self.creates_params or (name in self.params and leaf in self.params[name]):
            return self.params[name][leaf]
        shape = tuple(shape)
        self.param_inits.append((name, leaf, shape, *initial_distribution(init, shape)))
        value = jnp.zeros(shape, jnp.float32)  # jaxviz creates float32 parameters
        self.params.setdefault(name, {})[leaf] = value
        return value

    def _for_target(self, name):
        return self.target is not None and name == self.class_layer

    def _pairs(self, x):
        """A batch of inputs and one shared DeepLift reference as pairs (a copy of the
        reference for each input) before a class layer evaluated for each image's target
        alone, which scores each copy for its input's target (the targets given are the
        pairs').  (At a max-pool, :func:`layers.pairing_max_pool` forms them.)"""
        if self.guided and self.guided[0] == "deeplift_shared":
            self.guided = ("deeplift", self.guided[1])
            return layers.expand_reference(x)
        return x

    def nonnegative(self, value, known: bool = True):
        """``value``, recorded (under LRP, when ``known``) as never negative."""
        if self.lrp is not None and known:
            self._nonnegative[id(value)] = value
        return value

    def is_nonnegative(self, value) -> bool:
        """Whether ``value`` was recorded as never negative (a ReLU's output, a max-pool or
        concatenation of such)."""
        return self._nonnegative.get(id(value)) is value

    def concat(self, values, axis: int = -1):
        """``torch.cat(values, dim)`` (no module: nothing to name)."""
        return self.nonnegative(jnp.concatenate(values, axis=axis), all(map(self.is_nonnegative, values)))

    # ------------------------------------------------------------------ layers

    def conv(self, name, x, out: int, kernel: int, *, stride: int = 1, padding: int = 0, groups: int = 1,
             bias: bool = True, init: str = "default"):
        """``nn.Conv2d(Cin, out, kernel, stride, padding, groups=groups, bias=bias)``."""
        cin = x.shape[-1]
        w = self.param(name, "kernel", (kernel, kernel, cin // groups, out), init)
        b = None
        if bias:
            b = self.param(name, "bias", (out,), _bias_init(init, kernel * kernel * cin // groups))
            self.biases[name] = None
        stack = None  # the weights' input and output channel axes, where any input width will do
        if self._for_target(name):  # a 1×1 class convolution, each image's class alone
            x = self._pairs(x)
            layer, extra = _target_conv1x1, (self.target,)
        elif groups == 1:
            layer, extra, stack = functools.partial(_conv, stride=stride, padding=padding), (), (2, 3)
        else:
            layer, extra = functools.partial(_grouped_conv, stride=stride, padding=padding, groups=groups), ()
        y = self.output(name, self.affine(name, "conv", layer, x, w, b, extra, stack))
        if self.lrp is not None and name not in self.perturb:
            self.follows_conv(y, layer, x, w, b, extra)
        return y

    def affine(self, name, kind, layer, x, w, b, extra=(), stack=None):
        """``layer(x, w, b, *extra)``, a ``"conv"`` or ``"linear"`` layer affine in ``x``;
        under LRP with its rule (kept in ``self._rule``, with ``stack``: see
        :func:`relevance.affine`)."""
        if self.lrp is None:
            return layer(x, w, b, *extra)
        self._rule, self._stack = self.lrp.rule(name, kind, first=self._lrp_layers == 0), stack
        self._lrp_layers += 1
        return relevance.affine(layer, self._rule, x, w, b, extra, self.is_nonnegative(x), stack)

    def record_bias(self, name: str, value):
        """A traced network's bias layer ``name`` adds ``value`` (C,) to its spatial output:
        what FullGrad reads (jaxviz's own architectures read theirs from the parameters)."""
        self.biases[name] = None
        self.bias_values[name] = value

    def follows_conv(self, y, layer, x, w, b, extra=(), out_axis: int = -1):
        """Records that ``y`` is the output of the convolution just taken (``out_axis``: its
        weights' output-channel axis), for a BatchNorm reading it to merge into."""
        self._last_conv = (y, layer, self._rule, self._stack, x, w, b, extra, out_axis)

    def merged_into_conv(self, x, factor, shift):
        """LRP's BatchNorm canonizer (zennit's ``MergeBatchNorm``): when ``x`` is the output
        of the convolution just taken and the composite merges, that convolution with the
        per-channel map ``u ↦ u · factor + shift`` merged into its weights and bias, under
        its rule; else ``None``."""
        if self.lrp is None or not self.lrp.merge_batch_norm or not self._last_conv or self._last_conv[0] is not x:
            return None
        _, layer, rule, stack, conv_x, w, b, extra, out_axis = self._last_conv
        axis = out_axis % w.ndim
        w = w * factor.reshape(tuple(-1 if i == axis else 1 for i in range(w.ndim)))
        if b is not None:  # a traced layer's bias may have the output's rank: (1, 1, 1, C)
            channels = (1,) * (b.ndim - 1) + (-1,)
            shift = b * factor.reshape(channels) + shift.reshape(channels)
        return relevance.affine(layer, rule, conv_x, w, shift, extra, self.is_nonnegative(conv_x), stack)

    def linear(self, name, x, out: int, *, bias: bool = True, init: str = "default", bias_init: str | None = None):
        """``nn.Linear(in, out)`` on (N, in); ``bias_init="default"``: PyTorch's default bias
        beside weights the architecture initialises itself (GoogLeNet's)."""
        cin = x.shape[-1]
        w = self.param(name, "kernel", (cin, out), init)
        b = self.param(name, "bias", (out,), _bias_init(bias_init or init, cin)) if bias else None
        if self._for_target(name):
            x = self._pairs(x)
        layer, extra, stack = (_target_linear, (self.target,), None) if self._for_target(name) else (_linear, (), (0, 1))
        return self.output(name, self.affine(name, "linear", layer, x, w, b, extra, stack))

    def bn(self, name, x, *, eps: float = 1e-5):
        """Eval-mode ``nn.BatchNorm2d`` with its running statistics.

        Kept apart from the convolution before it: a captured convolution returns what its
        hook sees, and XLA fuses the affine map into its neighbours anyway.
        """
        c = x.shape[-1]
        scale = self.param(name, "scale", (c,), "ones")
        shift = self.param(name, "bias", (c,), "zeros")
        mean = self.param(name, "mean", (c,), "zeros")
        var = self.param(name, "var", (c,), "ones")
        self.biases[name] = eps
        if self.lrp is not None:
            # LRP's canonizer: the convolution whose output this reads, with the BatchNorm merged
            # into its weights and bias, takes its rule as one affine map
            factor = scale * jax.lax.rsqrt(var + jnp.asarray(eps, var.dtype))
            merged = self.merged_into_conv(x, factor, shift - mean * factor)
            if merged is not None:
                return self.output(name, merged)
        if self.lrp is not None and self.lrp.batch_norm is not None:  # Captum's: the affine map's rule
            layer = functools.partial(_batch_norm, eps=eps)
            return self.output(name, relevance.affine(layer, self.lrp.batch_norm, x, scale, shift, (mean, var)))
        if self.lrp is not None:  # a BatchNorm left alone passes relevance on (zennit's layer map)
            return self.output(name, relevance.passthrough(functools.partial(layers.batch_norm, eps=eps), x,
                                                           scale, shift, mean, var))
        return self.output(name, layers.batch_norm(x, scale, shift, mean, var, eps))

    def activation(self, kind, name, x, standard, module=True):
        """An activation of ``kind``: under a backward rule that reaches it (scope ``"all"``:
        every one; ``"modules"``: a ReLU module) that rule's version, else ``standard``."""
        self.activations.append((len(self.calls), name, kind if module else f"functional {kind}"))
        if self.lrp is not None:  # LRP passes relevance through activation modules
            y = relevance.passthrough(standard, x) if module else standard(x)
            y = self.nonnegative(y, kind in NONNEGATIVE_ACTIVATIONS)
            return y if name is None else self.output(name, y)
        reached = self.guided and (self.guided[1] == "all" or (kind == "relu" and module))
        y = layers.BACKWARD_RULES[self.guided[0]][kind](x) if reached else standard(x)
        return y if name is None else self.output(name, y)

    def relu(self, name, x):
        """``nn.ReLU`` module; ``name=None`` for a functional ``F.relu`` (no hook sees it)."""
        return self.activation("relu", name, x, layers.relu, module=name is not None)

    def relu6(self, name, x):
        return self.activation("relu6", name, x, layers.relu6)

    def hardswish(self, name, x):
        return self.activation("hardswish", name, x, layers.hardswish)

    def hardsigmoid(self, name, x):
        self.gates.append(len(self.calls) + 1)  # the product it gates: the next output
        if self.lrp is not None:
            return self.output(name, self.nonnegative(relevance.passthrough(layers.hardsigmoid, x)))
        return self.output(name, layers.hardsigmoid(x))

    def max_pool(self, name, x, kernel: int, stride: int | None = None, *, padding: int = 0, ceil_mode=False):
        self.max_pools.append(len(self.calls))
        if self.lrp is not None and self.lrp.max_pool_epsilon is not None:  # Captum's LRP: the ε rule
            def pool(v):
                return layers.max_pool(v, kernel, stride, padding, ceil_mode)

            y = relevance.normalized(pool, self.lrp.max_pool_epsilon)(x)
        else:
            pool = layers.max_pool
            if self.guided and self.guided[0] == "deeplift_shared":  # the pairs begin here
                self.guided, pool = ("deeplift", self.guided[1]), layers.pairing_max_pool
            elif self.guided and self.guided[0] == "deeplift":
                pool = layers.rescale_max_pool
            y = pool(x, kernel, stride, padding, ceil_mode)
        # (a window always holds an element of x: the padding never wins)
        return self.output(name, self.nonnegative(y, self.is_nonnegative(x)))

    def avg_pool(self, name, x, kernel: int, stride: int | None = None):
        return self.output(name, self._pool(functools.partial(layers.avg_pool, kernel=kernel, stride=stride), x))

    def adaptive_avg_pool(self, name, x, size):
        """``nn.AdaptiveAvgPool2d``; ``name=None`` for the functional form (no rule reaches it)."""
        pool = functools.partial(layers.adaptive_avg_pool, output_size=size)
        return pool(x) if name is None else self.output(name, self._pool(pool, x))

    def _pool(self, pool, x):
        # an average-pool module: under LRP, zennit's Norm rule
        if self.lrp is None:
            return pool(x)
        return self.nonnegative(relevance.normalized(pool, self.lrp.stabilizer)(x), self.is_nonnegative(x))

    def add(self, a, b):
        """A residual addition ``a + b`` (under LRP with ``residual_sums``: zennit's Sum, Norm)."""
        if self.lrp is not None and self.lrp.residual_sums:
            return relevance.sum_norm(a, b, self.lrp.stabilizer)
        return a + b

    def identity(self, name, x):
        """Dropout in eval mode."""
        return self.output(name, x)


def _bias_init(weight_init: str, fan_in: int) -> str:
    """PyTorch's default bias, uniform(±1/√fan_in), beside the default weights; torchvision
    zeroes the bias wherever it initialises the weights itself."""
    return f"uniform:{1.0 / math.sqrt(fan_in)!r}" if weight_init == "default" else "zeros"


def _conv(x, w, b, *, stride, padding):
    return layers.conv2d(x, w, b, stride=stride, padding=padding)


def _grouped_conv(x, w, b, *, stride, padding, groups):
    return layers.grouped_conv2d(x, w, b, stride=stride, padding=padding, groups=groups)


def _target_conv1x1(x, w, b, target):
    bias = jnp.zeros(w.shape[-1], w.dtype) if b is None else b
    return layers.target_channel_conv1x1(x, w, bias, target)[..., None]


def _batch_norm(x, scale, shift, mean, var, *, eps):
    return layers.batch_norm(x, scale, jnp.zeros_like(mean) if shift is None else shift, mean, var, eps)


def _linear(x, w, b):
    return layers.linear(x, w, b)


def _target_linear(x, w, b, target):
    return layers.target_column_linear(x, w, b, target)[:, None]


def flatten(x):
    """``torch.flatten(x, 1)`` of an NHWC batch, in PyTorch's NCHW element order."""
    if x.ndim == 4:
        x = jnp.transpose(x, (0, 3, 1, 2))
    return x.reshape(x.shape[0], -1)


@dataclass(frozen=True)
class Network:
    """An architecture: its forward function split at the head, and what it declares.

    Attributes:
      name: ``"resnet18"``.
      body: ``(f, x) -> features``, the network up to ``head_input``'s output.
      head: ``(f, features) -> logits``, the rest; ``class_layer`` is in it.
      head_input: the module whose output the head reads.
      class_layer: the last linear / 1×1 layer, one output per class: with a target it is
        evaluated for that class alone; ``None``: the logits are computed and each image's
        column taken (a network jaxviz did not write).
      default_layer: GradCAM's default, the last convolutional block's output.
      monotone_relus: activations whose upstream gradient is never negative for a target's
        logit (guided and standard backward agree there).
      style_content_layer, style_layers, style_weights: Gatys style-transfer preset.
      preprocess: applied to the input first (GoogLeNet's ``transform_input``), or ``None``.
      params_like: for a network whose parameters jaxviz does not create (your own model),
        their shapes and dtypes (a pytree of ``jax.ShapeDtypeStruct``); ``None`` otherwise.
      init_size: the input size the network is traced at to list its layers.
    """

    name: str
    body: Callable = field(compare=False)
    head: Callable = field(compare=False)
    head_input: str | None
    class_layer: str | None
    default_layer: str | None
    monotone_relus: frozenset = frozenset()
    style_content_layer: str | None = None
    style_layers: tuple[str, ...] = ()
    style_weights: tuple[float, ...] = ()
    feature_layers: tuple[str, ...] = ()
    layers_hint: str = ""
    preprocess: Callable | None = field(default=None, compare=False)
    params_like: object = field(default=None, compare=False)
    init_size: int | tuple[int, int] = 224

    def forward(self, f: Forward, x):
        if self.preprocess is not None:
            x = self.preprocess(x)
        return self.head(f, self.body(f, x))


OUTPUT = "output"  # pseudo-layer: the logits (N, num_classes)
INPUT = "input"  # the images, where a layer name may also name them (shared_reference_layers)


def run(network: Network, params, x, *, capture: Sequence[str] | None = None,
        perturb: Mapping[str, jax.Array] | None = None, replace: Mapping[str, jax.Array] | None = None,
        guided=False, target=None):
    """The forward pass: logits, or ``{name: output}`` for ``capture`` (see :class:`Forward`).

    ``replace``: layers whose output is the given value instead of the one computed (what
    comes before such a layer is traced, and left to XLA to drop when nothing else reads it).

    Layer names are checked by the caller (:meth:`jaxviz.Model.apply`, against the
    architecture description); ``guided`` is ``False`` or a ``(rule, scope)`` pair
    (:func:`check_guided`).
    """
    listing = call_listing(network)
    names = (OUTPUT,) if capture is None else tuple(capture)
    wanted_calls = [listing.last_call[n] for n in names if n != OUTPUT]
    stop_after = None if OUTPUT in names or OUTPUT in (perturb or {}) else max(wanted_calls, default=None)
    f = Forward(params, capture=names, perturb={k: v for k, v in (perturb or {}).items() if k != OUTPUT},
                replace=replace, guided=guided, target=target, class_layer=network.class_layer,
                last_call=listing.last_call, stop_after=stop_after)
    try:
        logits = network.forward(f, x)
    except _Stop:
        pass
    else:
        if target is not None:
            logits = logits[:, 0] if network.class_layer is not None else jnp.take_along_axis(
                logits, target[:, None], axis=1)[:, 0]
        if OUTPUT in (perturb or {}):
            logits = logits + perturb[OUTPUT]
        f.outputs[OUTPUT] = logits
    if capture is None:
        return f.outputs[OUTPUT]
    return {name: f.outputs[name] for name in names}


def run_head(network: Network, params, features, *, target=None):
    """The head alone, from ``head_input``'s output: logits, or each image's target logit."""
    f = Forward(params, target=target, class_layer=network.class_layer)
    logits = network.head(f, features)
    return logits[:, 0] if target is not None else logits


def check_guided(guided):
    """The backward rule as ``False`` or ``(rule, scope)``.

    ``True`` or ``"modules"``: guided backprop at the ``nn.ReLU`` modules (Captum's);
    ``"all"``: guided backprop at every ReLU-like activation; ``(rule, scope)``: any rule of
    :data:`BACKWARD_RULES` at the activations of scope ``"modules"`` or ``"all"``;
    ``("lrp", composite)``: LRP with a :class:`jaxviz.models.relevance.Composite`'s rules.
    """
    if guided is False or guided is None:
        return False
    if guided is True:
        return ("guided", "modules")
    if isinstance(guided, str) and guided in GUIDED_RULES:
        return ("guided", guided)
    if (isinstance(guided, tuple) and len(guided) == 2 and guided[0] in BACKWARD_RULES
            and guided[1] in GUIDED_RULES):
        return guided
    if (isinstance(guided, tuple) and len(guided) == 3 and guided[0] == "deeplift" and guided[1] in GUIDED_RULES
            and isinstance(guided[2], str)):
        return guided
    if isinstance(guided, tuple) and len(guided) == 2 and guided[0] == "lrp" and isinstance(
            guided[1], relevance.Composite):
        return guided
    raise InputError(f"`guided` must be False, True, one of {list(GUIDED_RULES)}, a (rule, scope) pair with "
                     f"rule in {list(BACKWARD_RULES)} and scope in {list(GUIDED_RULES)}, or (\"lrp\", a "
                     f"relevance.Composite), got {guided!r}")


@dataclass(frozen=True)
class CallListing:
    """The order of a network's named outputs, found once by tracing shapes only."""

    calls: tuple[str, ...]
    last_call: Mapping[str, int]
    activations: tuple[tuple[int, str | None, str], ...]
    max_pools: tuple[int, ...]  # call indices of the max-pools' outputs
    gates: tuple[int, ...]  # call indices of the products the hardsigmoid gates make
    biases: Mapping[str, float | None]  # convolutions with a bias (None) and BatchNorms (their eps)
    params_like: object  # the parameters' shapes and dtypes (jax.ShapeDtypeStruct leaves)
    shapes: Mapping[str, tuple[int, ...]]  # each layer's output shape at the traced size
    output_shape: tuple[int, ...]
    # a network jaxviz initialises: each parameter's (name, leaf, shape, family, scale)
    param_inits: tuple[tuple[str, str, tuple[int, ...], str, float], ...] = ()

    @property
    def layer_names(self) -> tuple[str, ...]:
        """Each name once, at its last call, in forward order."""
        return tuple(sorted(self.last_call, key=self.last_call.__getitem__))

    @property
    def param_shapes(self) -> Mapping[str, Mapping[str, tuple[int, ...]]]:
        """``{module path: {leaf: shape}}`` of an architecture jaxviz writes."""
        return {k: {leaf: tuple(v.shape) for leaf, v in leaves.items()} for k, leaves in self.params_like.items()}


def sample_input(params_like, size: int | tuple[int, int]) -> jax.ShapeDtypeStruct:
    """A one-image NHWC input of ``size`` (side or (height, width)) to trace at, in the
    parameters' first floating dtype (float32 for parameters jaxviz creates)."""
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    dtypes = [p.dtype for p in jax.tree_util.tree_leaves(params_like) if jnp.issubdtype(p.dtype, jnp.floating)]
    return jax.ShapeDtypeStruct((1, height, width, 3), dtypes[0] if dtypes else jnp.float32)


@functools.cache
def call_listing(network: Network) -> CallListing:
    box = {}

    def trace(params, x):
        f = Forward(params, creates_params=network.params_like is None)
        logits = network.forward(f, x)
        box["f"] = f
        return f.params, logits

    params_like, logits = jax.eval_shape(trace, {} if network.params_like is None else network.params_like,
                                         sample_input(network.params_like, network.init_size))
    f = box["f"]
    last = {}
    for index, name in enumerate(f.calls):
        last[name] = index
    return CallListing(tuple(f.calls), last, tuple(f.activations), tuple(f.max_pools), tuple(f.gates),
                       dict(f.biases), params_like, dict(f.shapes),
                       tuple(logits.shape), tuple(f.param_inits))


def bias_values(network: Network, params) -> dict:
    """A traced network's bias layers' biases, ``{name: (C,)}``, from its forward pass on
    a blank image (inside a compiled function XLA keeps the biases alone)."""
    f = Forward(params)
    sample = sample_input(network.params_like, network.init_size)
    network.forward(f, jnp.zeros(sample.shape, sample.dtype))
    return f.bias_values


def init_params(network: Network, key, dtype=jnp.float32):
    """Randomly initialised parameters in ``dtype``, drawn in float32 (torchvision's schemes;
    BatchNorm as PyTorch starts it): each parameter from ``fold_in(key, crc32("name/leaf"))``,
    so that its values depend on the key and its name alone.

    The parameters are drawn as the rows of a few arrays, one per family and power-of-two
    length (a parameter of 2^20 values or more alone), each row cut to its parameter: a
    program of a few draws, where drawing each parameter on its own compiles a kernel per
    parameter (benchmarks/results/init-model).  With a concrete key the rows are cut on the
    host, which compiles nothing more.
    """
    inits = call_listing(network).param_inits
    if not inits:
        raise InputError(f"{network.name} has no initialisation jaxviz knows")
    groups, places = _draw_plan(inits)
    rows = _draw_groups(groups, key)
    if not isinstance(key, jax.core.Tracer):
        rows = [np.asarray(r) for r in rows]
    dtype = jax.dtypes.canonicalize_dtype(dtype)  # host arrays converted and put on the device compile nothing
    params = {}
    for (name, leaf, shape, family, _), place in zip(inits, places):
        if place is None:
            value = np.full(shape, family == "ones", np.float32)
        else:
            group, row = place
            value = rows[group][row, :math.prod(shape)].reshape(shape)
        params.setdefault(name, {})[leaf] = jax.device_put(value.astype(dtype, copy=False))
    return params


_ALONE = 2 ** 20  # a parameter this large is drawn at its own length (no padding to a power of two)


def _draw_plan(inits):
    """(the draws: (family, length, the parameters' name keys, their scales) each, and each
    parameter's (draw, row), ``None`` for a constant)."""
    index: dict[tuple[str, int], int] = {}
    draws, places = [], []
    for name, leaf, shape, family, scale in inits:
        if family not in DRAWN_FAMILIES:
            places.append(None)
            continue
        size = math.prod(shape)
        length = size if size >= _ALONE else 1 << max(size - 1, 0).bit_length()
        group = index.setdefault((family, length), len(draws))
        if group == len(draws):
            draws.append((family, length, [], []))
        places.append((group, len(draws[group][2])))
        draws[group][2].append(zlib.crc32(f"{name}/{leaf}".encode()))
        draws[group][3].append(scale)
    return tuple((family, length, tuple(crcs), tuple(scales)) for family, length, crcs, scales in draws), places


@functools.partial(jax.jit, static_argnums=0)
def _draw_groups(groups, key):
    name_keys = np.array([c for _, _, crcs, _ in groups for c in crcs], np.uint32)
    keys = jax.vmap(jax.random.fold_in, (None, 0))(key, name_keys)
    rows, start = [], 0
    for family, length, crcs, scales in groups:
        draw = functools.partial(_draw, family, size=length, dtype=jnp.float32)
        rows.append(jax.vmap(draw)(keys[start:start + len(crcs)], np.asarray(scales, np.float32)))
        start += len(crcs)
    return rows


@functools.lru_cache(maxsize=4096)
def input_size_error(network: Network, height: int, width: int) -> str | None:
    """Why the network does not accept an input of this size (found by tracing shapes), or
    ``None`` when it does."""
    params_like = call_listing(network).params_like if network.params_like is None else network.params_like
    try:
        jax.eval_shape(lambda p, x: network.forward(Forward(p), x), params_like,
                       sample_input(network.params_like, (height, width)))
    except (InputError, TypeError, ValueError) as err:
        return str(err).split("\n")[0]
    except Exception as err:  # noqa: BLE001 - your own model's code may raise anything on a bad shape
        if network.params_like is None:
            raise
        return f"{type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''}"
    return None


def input_size_ok(network: Network, height: int, width: int) -> bool:
    """Whether the network accepts an input of this size."""
    return input_size_error(network, height, width) is None


@functools.lru_cache(maxsize=None)
def minimum_input_size(network: Network) -> int:
    """The smallest square input the network accepts (sizes are accepted from it upward)."""
    low, high = 1, 8
    while not input_size_ok(network, high, high):
        low, high = high + 1, high * 2
        if high > 4096:
            raise InputError(f"{network.name} accepts no input up to 4096 pixels")
    while low < high:
        middle = (low + high) // 2
        if input_size_ok(network, middle, middle):
            high = middle
        else:
            low = middle + 1
    return low


def shared_reference_layers(network: Network, scope: str) -> tuple[str, ...]:
    """Where a DeepLift pass (rule ``("deeplift", scope)``) of inputs beside one shared
    reference can go back from pairs (a copy of the reference for each input) to the
    inputs and the reference once: ``(INPUT,)`` for a network without max-pools, which
    never needs pairs; else the layers after which no max-pool and nothing that would give
    the two halves of a pair different gradients follows (an activation the rule does not
    reach, a gate), in forward order, for the caller to take the first that cuts the
    network; none for a network whose every operation jaxviz does not see (your own model).

    Only the max-pool rule reads a reference's own gradient: below the first max-pool
    nothing reads it, and above the last the rescale rule and the affine layers give both
    halves of a pair the same one.  (The pairs start at the first max-pool, which must cut
    the network too: :func:`max_pool_layers`.)
    """
    if network.params_like is not None:
        return ()
    listing = call_listing(network)
    if not listing.max_pools:
        return (INPUT,)
    uneven = [i for i, _, kind in listing.activations if not (scope == "all" or kind == "relu")]
    after = max(listing.max_pools + listing.gates + tuple(uneven))
    class_index = listing.last_call.get(network.class_layer, len(listing.calls))
    return tuple(name for name in listing.layer_names if after <= listing.last_call[name] < class_index)


def max_pool_layers(network: Network) -> tuple[str, ...]:
    """The network's max-pools, in forward order."""
    listing = call_listing(network)
    return tuple(listing.calls[i] for i in listing.max_pools)
