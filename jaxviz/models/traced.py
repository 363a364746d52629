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
import numpy as np
from jax.ad_checkpoint import checkpoint_name
from jax.extend import core as jcore

from jaxviz.errors import InputError, InputTypeError
from jaxviz.models import layers
from jaxviz.models.network import Forward, Network, sample_input

# a Flax module's output is named with this prefix, which the layer name drops
_MODULE_PREFIX = "jaxviz:"
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


def _hides_activation(eqn) -> bool:
    """Whether a sub-program of ``eqn`` holds a ReLU we would not reach."""
    for sub in jcore.jaxprs_in_params(eqn.params):
        for inner in sub.eqns:
            if _activation(inner) or _hides_activation(inner):
                return True
    return False


def _bind(eqn, invals):
    with eqn.ctx.manager:  # as jax.core.eval_jaxpr binds an operation
        out = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
    return out if eqn.primitive.multiple_results else [out]


def _evaluate(jaxpr, consts, args, f: Forward, counts):
    env = {}

    def read(v):
        return v.val if isinstance(v, jcore.Literal) else env[v]

    for var, value in zip(jaxpr.constvars, consts):
        env[var] = value
    for var, value in zip(jaxpr.invars, args):
        env[var] = value
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outvals = _evaluate_eqn(eqn, invals, f, counts)
        for var, value in zip(eqn.outvars, outvals):
            env[var] = value
    return [read(v) for v in jaxpr.outvars]


def _evaluate_eqn(eqn, invals, f: Forward, counts):
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
        return [f.output(eqn.params["name"].removeprefix(_MODULE_PREFIX), invals[0])]
    if name in _INLINED:
        closed = _closed(eqn.params[_INLINED[name]])
        return _evaluate(closed.jaxpr, closed.consts, invals, f, counts)
    if name == "reduce_window_max" and f.guided and f.guided[0] == "deeplift":
        return [layers.rescale_pool(lambda v: _bind(eqn, [v])[0])(invals[0])]
    if f.guided and _hides_activation(eqn):
        raise InputError(f"guided backprop cannot reach a ReLU inside `{name}`; only ReLUs outside "
                         f"control flow and custom-derivative functions can be guided")
    return _bind(eqn, invals)


def _traced_forward(apply):
    def forward(f: Forward, x):
        if f.lrp is not None:
            raise InputError("LRP's rules need to know each convolution and linear layer: they work on jaxviz's "
                             "architectures (jaxviz.ARCHITECTURES), not yet on a model from from_flax / from_function")
        closed = jax.make_jaxpr(apply)(f.params, x)
        leaves = jax.tree_util.tree_leaves((f.params, x))
        (logits,) = _evaluate(closed.jaxpr, closed.consts, leaves, f, collections.Counter())
        return logits

    return forward


def _name_module_outputs(next_fun, args, kwargs, context):
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
