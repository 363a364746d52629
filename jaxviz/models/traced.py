"""Your own network as a :class:`jaxviz.Model`: a Flax module or a pure function, unchanged.

jaxviz traces the function to a jaxpr and evaluates that program itself, inside the same
compiled function, handing the values it recognises to the shared forward machinery
(:class:`jaxviz.models.network.Forward`).  That gives capture, perturb, stopping after the
last needed layer and guided backprop without hooks and without a change to the user's code:

* layers: every value named with ``jax.ad_checkpoint.checkpoint_name`` (a Flax linen
  submodule's output is named by its path, ``"block1.conv"``, while it is traced, through
  ``nn.intercept_methods``), and every ReLU as ``relu.0``, ``relu.1``, … in program order
  (``relu6.k`` for ReLU6) — an array of at least two axes of floating values;
* guided backprop: the ReLUs found get the guided backward pass (``guided=True``), and with
  ``guided="all"`` the ReLU6s too, and likewise the other backward rules (DeepLift's also
  reaches every max-pool, a ``lax.reduce_window`` with ``max``).  A ReLU is ``jax.nn.relu``
  (Flax's ``nn.relu``) or ``max(x, 0)`` with a literal zero (``jnp.maximum(x, 0)``); a
  ReLU6 is ``jax.nn.relu6``.
  Without ``guided`` every operation is the user's own, derivative rules included.

* LRP: every convolution and ``dot_general`` of the images with weights that do not depend
  on them (a ``nn.Conv``, ``nn.Dense``, ``x @ w``) is an affine layer that takes the
  composite's rule, together with a bias added to its output right after (named by its
  module when a linen module's output is exactly that); the ReLUs pass relevance on, as
  activation modules do in zennit.  A linen ``nn.BatchNorm`` (over the last axis, running
  averages) is recognised as well: merged into the convolution it reads when the composite
  merges, else passing relevance on (zennit's ``Pass``; Captum's preset: its ε rule).  In an
  NNX module or a plain function a BatchNorm is arithmetic and keeps its gradient, and so do
  every other operation (residual sums and pools included).
* FullGrad's bias layers: each such convolution with a bias whose output is a named layer,
  and each recognised BatchNorm, over spatial maps; their biases are read from the program
  (:func:`jaxviz.models.network.bias_values`).

Limits: the program is entered through ``jit`` and ``checkpoint``; activations inside other
higher-order operations (``scan``, ``while_loop``, ``cond``, a ``custom_vjp`` or other
``custom_jvp`` function) are not layers, and asking for guided backprop through one is an
error that says so.  Flax NNX modules have no method interception: their layers are the ReLUs
and any ``checkpoint_name``-named values.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name
from jax.extend import core as jcore

from jaxviz.errors import InputError, InputTypeError
from jaxviz.models import layers, relevance
from jaxviz.models.network import Forward, Network, sample_input

# a Flax module's output is named with this prefix, which the layer name drops
_MODULE_PREFIX = "jaxviz:"
# a linen BatchNorm's input is marked with this prefix and its path (not a layer): LRP
# recognises the operations between the mark and the module's output as the BatchNorm
_BATCH_NORM_INPUT = "jaxviz-batch-norm-input:"
# operations of the images with weights that LRP's rules treat as affine layers
_AFFINE = {"conv_general_dilated": "conv", "dot_general": "linear"}
# the element-wise operations an eval-mode BatchNorm is made of
_ELEMENTWISE_AFFINE = {"add", "sub", "mul", "div", "neg", "convert_element_type"}
# jaxpr operations whose body is the caller's program, evaluated here as if inlined
_INLINED = {"jit": "jaxpr", "pjit": "jaxpr", "checkpoint": "jaxpr", "remat": "jaxpr", "closed_call": "call_jaxpr"}


@dataclass(frozen=True, eq=False)
class TracedNetwork(Network):
    """A network jaxviz did not write; equal only to itself (compiled programs are cached
    per network, and two functions cannot be told apart by their fields)."""

    __eq__ = object.__eq__
    __hash__ = object.__hash__


def _is_literal(v, value) -> bool:
    return isinstance(v, jcore.Literal) and np.ndim(v.val) == 0 and float(v.val) == value


def _body(closed):
    """The operations of a one-input jaxpr with the ``jit`` wrappers taken out."""
    ops = []
    for eqn in closed.jaxpr.eqns:
        key = _INLINED.get(eqn.primitive.name)
        if key is not None:
            ops.extend(_body(_closed(eqn.params[key])))
        else:
            ops.append(eqn)
    return ops


def _closed(jaxpr):
    return jaxpr if isinstance(jaxpr, jcore.ClosedJaxpr) else jcore.ClosedJaxpr(jaxpr, ())


def _activation(eqn):
    """``(kind, operand index)`` when ``eqn`` is a ReLU or a ReLU6 we recognise, else ``None``."""
    name = eqn.primitive.name
    out = eqn.outvars[0].aval if eqn.outvars else None
    if out is None or len(out.shape) < 2 or not np.issubdtype(out.dtype, np.floating):
        return None  # an activation has a batch axis and floating values (not an index or a scalar)
    if name == "max" and len(eqn.invars) == 2:
        for i in (0, 1):
            if _is_literal(eqn.invars[1 - i], 0.0) and not isinstance(eqn.invars[i], jcore.Literal):
                return "relu", i
    if name == "custom_jvp_call" and len(eqn.invars) == 1:
        ops = _body(eqn.params["call_jaxpr"])
        if len(ops) == 1 and _activation(ops[0]):
            return "relu", 0
        if (len(ops) == 2 and _activation(ops[0]) and ops[1].primitive.name == "min"
                and any(_is_literal(v, 6.0) for v in ops[1].invars)):
            return "relu6", 0
    return None


def _hides_activation(eqn, affine: bool = False) -> bool:
    """Whether a sub-program of ``eqn`` holds a ReLU (or, ``affine``, a convolution or
    product) we would not reach."""
    for sub in jcore.jaxprs_in_params(eqn.params):
        for inner in sub.eqns:
            if _activation(inner) or (affine and inner.primitive.name in _AFFINE) or _hides_activation(inner, affine):
                return True
    return False


def _is_var(v) -> bool:
    return not isinstance(v, jcore.Literal)


def _varying(jaxpr, varying_args) -> set:
    """The variables of ``jaxpr`` that depend on the arguments flagged in ``varying_args``."""
    varying = {v for v, vary in zip(jaxpr.invars, varying_args) if vary}
    for eqn in jaxpr.eqns:
        if any(_is_var(v) and v in varying for v in eqn.invars):
            varying.update(eqn.outvars)
    return varying


@dataclass
class _LayerPlan:
    """The affine layers and BatchNorms of one jaxpr, where LRP's rules reach and FullGrad's
    biases are (equation indices)."""

    skip: set  # evaluated as part of a later equation
    affine_at: dict  # index → (affine equation, the images' operand, bias variable or None, layer name)
    batch_norms: dict  # index of a BatchNorm's output name → (its input mark's variable, its equations)


def _layer_plan(jaxpr, varying: set) -> _LayerPlan:
    eqns = jaxpr.eqns
    uses = collections.Counter(v for eqn in eqns for v in eqn.invars if _is_var(v))
    uses.update(v for v in jaxpr.outvars if _is_var(v))
    consumer = {v: i for i, eqn in enumerate(eqns) for v in eqn.invars if _is_var(v)}

    def only_use(var, primitive):
        i = consumer.get(var) if uses[var] == 1 else None
        return i if i is not None and eqns[i].primitive.name == primitive else None

    plan = _LayerPlan(set(), {}, {})
    for i, eqn in enumerate(eqns):
        name = eqn.primitive.name
        if name in _AFFINE and len(eqn.invars) == 2:
            flags = [_is_var(v) and v in varying for v in eqn.invars]
            if flags.count(True) != 1:
                continue  # a product of two activations (or of two weights) is no layer
            at, bias = i, None
            add = only_use(eqn.outvars[0], "add")
            if add is not None:
                other = [v for v in eqns[add].invars if v is not eqn.outvars[0]]
                if len(other) == 1 and not (_is_var(other[0]) and other[0] in varying):
                    at, bias = add, other[0]
                    plan.skip.add(i)
            named = only_use(eqns[at].outvars[0], "name")
            layer = None
            if named is not None and eqns[named].params["name"].startswith(_MODULE_PREFIX):
                layer = eqns[named].params["name"].removeprefix(_MODULE_PREFIX)
            plan.affine_at[at] = (eqn, flags.index(True), bias, layer)
        elif name == "name" and eqn.params["name"].startswith(_BATCH_NORM_INPUT):
            output_name = _MODULE_PREFIX + eqn.params["name"].removeprefix(_BATCH_NORM_INPUT)
            end = next((q for q in range(i + 1, len(eqns)) if eqns[q].primitive.name == "name"
                        and eqns[q].params["name"] == output_name), None)
            if end is None:
                continue
            reached, body = {eqn.outvars[0]}, []
            for q in range(i + 1, end):
                inputs = [_is_var(v) and v in reached for v in eqns[q].invars]
                if any(inputs):
                    others_vary = any(_is_var(v) and v in varying and not r for v, r in zip(eqns[q].invars, inputs))
                    primitive = eqns[q].primitive.name
                    if (primitive not in _ELEMENTWISE_AFFINE or others_vary or (primitive == "div" and inputs[1])
                            or (primitive == "mul" and all(inputs))):
                        break  # not an eval-mode BatchNorm (batch statistics, say): left as it is
                    reached.update(eqns[q].outvars)
                    body.append(q)
            else:
                output, inside = eqns[end].invars[0], set(body) | {end}
                own = reached - {output, eqn.outvars[0]}  # its intermediate values: nothing else may read them
                leaks = any(_is_var(v) and v in own for q, e in enumerate(eqns) if q not in inside
                            for v in e.invars) or any(_is_var(v) and v in own for v in jaxpr.outvars)
                if _is_var(output) and output in reached and not leaks:
                    plan.skip.update(body)
                    plan.batch_norms[end] = (eqn.outvars[0], [eqns[q] for q in body])
    return plan


# operations whose output is never negative when no floating input is (LRP skips the terms
# of a non-negative input's negative part); ``max`` needs one such input
_KEEPS_SIGN = frozenset({"add", "broadcast_in_dim", "concatenate", "convert_element_type", "copy", "copy_p", "div",
                         "expand_dims", "mul", "reduce_max", "reduce_sum", "reduce_window_max", "reduce_window_sum",
                         "reshape", "slice", "squeeze", "transpose"})


def _keeps_sign(f: Forward, eqn, invals) -> bool:
    """Whether ``eqn``'s outputs are never negative, given which of its inputs are not."""
    def known(v, value):
        if isinstance(v, jcore.Literal):
            return bool(np.all(np.asarray(v.val) >= 0))
        return f.is_nonnegative(value)

    floats = [known(v, value) for v, value in zip(eqn.invars, invals) if np.issubdtype(v.aval.dtype, np.floating)]
    name = eqn.primitive.name
    if name == "max":
        return any(floats)
    return name in _KEEPS_SIGN and bool(floats) and all(floats)


def _bind(eqn, invals):
    with eqn.ctx.manager:  # as jax.core.eval_jaxpr binds an operation
        out = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
    return out if eqn.primitive.multiple_results else [out]


def _evaluate(jaxpr, consts, args, f: Forward, counts, varying_args):
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for var, value in zip(jaxpr.constvars, consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, args):
        env[var] = value
    varying = _varying(jaxpr, varying_args)
    plan = _layer_plan(jaxpr, varying)
    lrp = f.lrp is not None
    for index, eqn in enumerate(jaxpr.eqns):
        if lrp and index in plan.skip:
            continue
        if lrp and index in plan.affine_at:
            outvals = [_affine_layer(f, *plan.affine_at[index], read)]
        elif lrp and index in plan.batch_norms:
            outvals = [f.output(eqn.params["name"].removeprefix(_MODULE_PREFIX),
                                _batch_norm(f, *plan.batch_norms[index], eqn.invars[0], read))]
        else:
            if index in plan.batch_norms:  # (before its output's name records the layer)
                _record_batch_norm_bias(f, *plan.batch_norms[index], eqn.invars[0], eqn, read)
            invals = [read(v) for v in eqn.invars]
            flags = [_is_var(v) and v in varying for v in eqn.invars]
            outvals = _evaluate_eqn(eqn, invals, f, counts, flags)
            if lrp and _keeps_sign(f, eqn, invals):
                outvals = [f.nonnegative(v) for v in outvals]
        for var, value in zip(eqn.outvars, outvals):
            env[var] = value
        if not lrp and index in plan.affine_at:
            _record_conv_bias(f, *plan.affine_at[index], read)
    return [read(v) for v in jaxpr.outvars]


def _record_conv_bias(f: Forward, eqn, position, bias, layer_name, read):
    """A named convolution's bias over spatial maps, for FullGrad."""
    if (bias is not None and layer_name is not None and eqn.primitive.name == "conv_general_dilated"
            and len(eqn.outvars[0].aval.shape) == 4):
        value = read(bias)
        f.record_bias(layer_name, jnp.broadcast_to(value, eqn.outvars[0].aval.shape).reshape(-1, value.shape[-1])[0])


def _record_batch_norm_bias(f: Forward, mark, eqns, output, name_eqn, read):
    """A linen BatchNorm's bias over spatial maps (its output at a zero input), for FullGrad."""
    x = read(mark)
    if x.ndim == 4:
        batch_norm, values = _batch_norm_function(mark, eqns, output, read)
        shift = batch_norm(jnp.zeros_like(x), *values)
        f.record_bias(name_eqn.params["name"].removeprefix(_MODULE_PREFIX), shift.reshape(-1, shift.shape[-1])[0])


def _affine_layer(f: Forward, eqn, position, bias, layer_name, read):
    """An affine layer under LRP: ``eqn`` (a convolution or product of the images'
    operand ``position`` with weights), plus ``bias`` when one is added, under its rule."""
    x, w = read(eqn.invars[position]), read(eqn.invars[1 - position])

    def layer(v, w, b):
        y = _bind(eqn, [v, w] if position == 0 else [w, v])[0]
        return y if b is None else y + jnp.broadcast_to(b, y.shape)

    b = None if bias is None else read(bias)
    y = f.affine(layer_name, _AFFINE[eqn.primitive.name], layer, x, w, b)
    out_axis = _output_channel_axis(eqn, position)
    if out_axis is not None:
        f.follows_conv(y, layer, x, w, b, out_axis=out_axis)
    return y


def _output_channel_axis(eqn, position):
    """The weights' axis that becomes the output's last axis (a BatchNorm over that axis can
    merge into the layer), or ``None``."""
    if position != 0:
        return None
    rank = len(eqn.outvars[0].aval.shape)
    if eqn.primitive.name == "conv_general_dilated":
        numbers = eqn.params["dimension_numbers"]
        return numbers.rhs_spec[0] if numbers.out_spec[1] == rank - 1 else None
    (_, contracting), (_, batch) = eqn.params["dimension_numbers"]
    free = [d for d in range(len(eqn.invars[1].aval.shape)) if d not in contracting and d not in batch]
    return free[0] if len(free) == 1 else None


def _batch_norm_function(mark, eqns, output, read):
    """A linen BatchNorm's operations as ``function(u, *values)`` and the ``values`` (the
    statistics and parameters it reads) to call it with: as arguments, since a backward
    rule's function may close over no traced value."""
    made = {mark} | {v for eqn in eqns for v in eqn.outvars}
    read_in = list(dict.fromkeys(v for eqn in eqns for v in eqn.invars if _is_var(v) and v not in made))

    def batch_norm(u, *values):
        env = {mark: u, **dict(zip(read_in, values))}
        for eqn in eqns:
            outs = _bind(eqn, [env[v] if _is_var(v) else v.val for v in eqn.invars])
            env.update(zip(eqn.outvars, outs))
        return env[output]

    return batch_norm, [read(v) for v in read_in]


def _scaled(u, scale, shift):
    return u * scale if shift is None else u * scale + shift


def _batch_norm(f: Forward, mark, eqns, output, read):
    """A linen BatchNorm under LRP: merged into the convolution it reads, else passing
    relevance on (or, Captum's preset, the ε rule of the affine map it is)."""
    x = read(mark)
    batch_norm, values = _batch_norm_function(mark, eqns, output, read)
    shift = batch_norm(jnp.zeros_like(x), *values)  # the map is u ↦ u · scale + shift, element-wise
    scale = batch_norm(jnp.ones_like(x), *values) - shift
    corner = (0,) * (x.ndim - 1)
    merged = f.merged_into_conv(x, scale[corner], shift[corner])
    if merged is not None:
        return merged
    if f.lrp.batch_norm is not None:
        return relevance.affine(_scaled, f.lrp.batch_norm, x, scale, shift)
    return relevance.passthrough(batch_norm, x, *values)


def _evaluate_eqn(eqn, invals, f: Forward, counts, flags):
    name = eqn.primitive.name
    found = _activation(eqn)
    if found is not None:
        kind, operand = found
        layer = f"{kind}.{counts[kind]}"
        counts[kind] += 1

        def standard(x):  # the user's own operation, derivative rule included
            return _bind(eqn, invals[:operand] + [x] + invals[operand + 1:])[0]

        return [f.activation(kind, layer, invals[operand], standard)]
    if name == "name":  # checkpoint_name: a named value is a layer
        if eqn.params["name"].startswith(_BATCH_NORM_INPUT):
            return [invals[0]]
        return [f.output(eqn.params["name"].removeprefix(_MODULE_PREFIX), invals[0])]
    if name in _INLINED:
        closed = _closed(eqn.params[_INLINED[name]])
        return _evaluate(closed.jaxpr, closed.consts, invals, f, counts, flags)
    if name == "reduce_window_max" and f.guided and f.guided[0] == "deeplift":
        return [layers.rescale_pool(lambda v: _bind(eqn, [v])[0])(invals[0])]
    if name == "reduce_window_max" and f.lrp is not None and f.lrp.max_pool_epsilon is not None:
        return [relevance.normalized(lambda v: _bind(eqn, [v])[0], f.lrp.max_pool_epsilon)(invals[0])]
    if f.lrp is not None and _hides_activation(eqn, affine=True):
        raise InputError(f"LRP's rules cannot reach a ReLU, convolution or product inside `{name}`; only those "
                         f"outside control flow and custom-derivative functions take a rule")
    if f.guided and _hides_activation(eqn):
        raise InputError(f"guided backprop cannot reach a ReLU inside `{name}`; only ReLUs outside "
                         f"control flow and custom-derivative functions can be guided")
    return _bind(eqn, invals)


def _traced_forward(apply):
    def forward(f: Forward, x):
        closed = jax.make_jaxpr(apply)(f.params, x)
        leaves = jax.tree_util.tree_leaves((f.params, x))
        varying = [False] * (len(leaves) - 1) + [True]  # the images are the last argument
        (logits,) = _evaluate(closed.jaxpr, closed.consts, leaves, f, collections.Counter(), varying)
        return logits

    return forward


def _name_module_outputs(next_fun, args, kwargs, context):
    from flax import linen

    module = context.module
    if (context.method_name == "__call__" and module.path and isinstance(module, linen.BatchNorm) and args
            and isinstance(args[0], jax.Array) and module.axis in (-1, args[0].ndim - 1)):
        args = (checkpoint_name(args[0], _BATCH_NORM_INPUT + ".".join(module.path)),) + tuple(args[1:])
    out = next_fun(*args, **kwargs)
    if context.method_name == "__call__" and context.module.path and isinstance(out, jax.Array):
        out = checkpoint_name(out, _MODULE_PREFIX + ".".join(context.module.path))
    return out


def from_function(apply, params, *, name: str = "own model", input_size: int | tuple[int, int] = 224):
    """Your own network, ``apply(params, x) -> logits``, as a :class:`jaxviz.Model`.

    Args:
      apply: a pure function of the parameters and an NHWC batch (N, H, W, 3) returning
        logits (N, num_classes).
      params: its parameters (any pytree of arrays).
      name: what error messages call the network.
      input_size: a height and width the network accepts (it is traced there to list its
        layers and count its classes).

    Layers: the ReLUs (``relu.0``, ``relu.1``, …), values named with
    ``jax.ad_checkpoint.checkpoint_name``, and ``output``; see :mod:`jaxviz.models.traced`.
    """
    from jaxviz.models.model import Model

    if not callable(apply):
        raise InputTypeError(f"`apply` must be a function apply(params, x) -> logits, got {type(apply).__name__}")
    params_like = jax.tree_util.tree_map(
        lambda p: jax.ShapeDtypeStruct(np.shape(p), p.dtype if hasattr(p, "dtype") else np.result_type(p)), params)
    if not any(np.issubdtype(p.dtype, np.floating) for p in jax.tree_util.tree_leaves(params_like)):
        raise InputTypeError(f"{name}'s parameters hold no floating-point array")
    sample = sample_input(params_like, input_size)
    try:
        out = jax.eval_shape(apply, params_like, sample)
    except Exception as err:  # noqa: BLE001 - the user's code may raise anything on a shape it rejects
        raise InputError(f"{name} cannot be traced on a {sample.shape} batch (pass the "
                         f"`input_size` it accepts): {type(err).__name__}: {err}") from err
    if not isinstance(out, jax.ShapeDtypeStruct) or len(out.shape) != 2:
        raise InputError(f"{name} must return logits of shape (N, num_classes), got {out}")
    network = TracedNetwork(name=name, body=_traced_forward(apply), head=lambda f, logits: logits,
                            head_input=None, class_layer=None, default_layer=None, params_like=params_like,
                            init_size=sample.shape[1:3])
    return Model(params, network)


def from_flax(module, variables=None, *, input_size: int | tuple[int, int] = 224, **apply_kwargs):
    """Your own Flax network as a :class:`jaxviz.Model`.

    Args:
      module: a Flax linen ``nn.Module`` (with ``variables``), or an NNX ``nnx.Module``.
      variables: a linen module's variables (``{"params": …, "batch_stats": …}``).
      input_size: a height and width the network accepts.
      apply_kwargs: passed to a linen module's ``apply`` (``train=False``): it must compute
        the eval-mode function (BatchNorm's running averages, no dropout).

    Layers: a linen module's submodules by path (``"Conv_0"``, ``"block1.conv"``), the
    ReLUs (``relu.0``, …) and ``output``; an NNX module's ReLUs and ``output``.
    """
    from flax import linen, nnx

    if isinstance(module, nnx.Module):
        if variables is not None or apply_kwargs:
            raise InputError("an NNX module holds its own state: pass it alone")
        graphdef, state = nnx.split(module)
        return from_function(lambda s, x: nnx.merge(graphdef, s)(x), state, name=type(module).__name__,
                             input_size=input_size)
    if not isinstance(module, linen.Module):
        raise InputTypeError(f"`module` must be a Flax linen or NNX module, got {type(module).__name__}")
    if variables is None:
        raise InputError("a linen module needs its `variables` (from module.init or a checkpoint)")

    def apply(variables, x):
        with linen.intercept_methods(_name_module_outputs):
            return module.apply(variables, x, **apply_kwargs)

    return from_function(apply, variables, name=type(module).__name__, input_size=input_size)
