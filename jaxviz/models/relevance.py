"""Layer-wise relevance propagation's rules (zennit's), for the model's backward-rule switch.

A rule changes one layer's backward pass, never its forward values: the relevance arriving
at a layer's output (in place of the gradient) is sent to its input by the rule.  Under
``model.apply(..., guided=("lrp", composite))`` every convolution and linear layer takes
the composite's rule, the activation modules and the BatchNorms that were not merged pass
relevance through unchanged (zennit's ``Pass``), average pools and the residual sums divide
it in proportion to their inputs (``Norm``), and every other operation (max-pools,
concatenations, functional activations) keeps its gradient.  A BatchNorm that reads a convolution's output directly
is merged into that convolution first (zennit's ``MergeBatchNorm`` canonizers), so the rule
sees the affine map they make together.

Each rule is the function zennit's ``BasicHook`` builds from modified inputs and
parameters: for an affine layer ``z = W x + b``,

* ``epsilon``: ``R_in = x ⊙ Wᵀ (R / s(z))`` with ``s(z) = z + ε·sign(z)`` (sign(0) = 1);
* ``zplus``: positive weights on positive inputs and negative weights on negative inputs;
* ``alpha_beta``: α times the positive contributions' share, minus β times the negative;
* ``gamma``: weights raised by γ times their positive (or negative) part, the positive and
  negative outputs explained separately (zennit's generalised Gamma);
* ``zbox``: the input bounded by ``low`` and ``high`` (the first layer);
* ``flat`` and ``wsquare``: relevance spread by ones or by the squared weights, whatever
  the input.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import InputError

STABILIZER = 1e-6  # zennit's default ε and stabilizer
RULES = ("epsilon", "zplus", "alpha_beta", "gamma", "zbox", "flat", "wsquare")


@dataclass(frozen=True)
class Rule:
    """One rule and its parameters; build it with :func:`epsilon`, :func:`zplus`, …"""

    name: str
    stabilizer: float = STABILIZER  # ε of the epsilon rule, the stabilizer of the others
    alpha: float = 2.0
    beta: float = 1.0
    gamma: float = 0.25
    low: tuple[float, ...] = ()  # zbox's per-channel bounds (one value: every channel)
    high: tuple[float, ...] = ()

    def __post_init__(self):
        if self.name not in RULES:
            raise InputError(f"unknown LRP rule {self.name!r}; the rules are {list(RULES)}")


def epsilon(epsilon: float = STABILIZER) -> Rule:
    """LRP-ε: relevance in proportion to each input's contribution, ε added to |z|."""
    return Rule("epsilon", stabilizer=epsilon)


def zplus(stabilizer: float = STABILIZER) -> Rule:
    """LRP-z⁺ (α1β0): the positive contributions alone."""
    return Rule("zplus", stabilizer=stabilizer)


def alpha_beta(alpha: float = 2.0, beta: float = 1.0, stabilizer: float = STABILIZER) -> Rule:
    """LRP-αβ: α times the positive contributions' share minus β times the negative's."""
    if alpha < 0 or beta < 0 or alpha - beta != 1:
        raise InputError(f"alpha_beta needs alpha, beta >= 0 and alpha - beta = 1, got {alpha}, {beta}")
    return Rule("alpha_beta", stabilizer=stabilizer, alpha=float(alpha), beta=float(beta))


def gamma(gamma: float = 0.25, stabilizer: float = STABILIZER) -> Rule:
    """LRP-γ: positive (for positive outputs) or negative weights raised by γ times themselves."""
    return Rule("gamma", stabilizer=stabilizer, gamma=float(gamma))


def zbox(low, high, stabilizer: float = STABILIZER) -> Rule:
    """LRP-zᴮ for an input bounded by ``low`` and ``high`` (floats, or one per channel)."""
    low, high = _channels(low, "low"), _channels(high, "high")
    if len(low) != len(high):
        raise InputError(f"zbox's `low` and `high` differ in length: {len(low)} and {len(high)}")
    return Rule("zbox", stabilizer=stabilizer, low=low, high=high)


def flat(stabilizer: float = STABILIZER) -> Rule:
    """Relevance spread uniformly over each output's receptive field."""
    return Rule("flat", stabilizer=stabilizer)


def wsquare(stabilizer: float = STABILIZER) -> Rule:
    """Relevance spread in proportion to the squared weights."""
    return Rule("wsquare", stabilizer=stabilizer)


def _channels(value, name) -> tuple[float, ...]:
    values = tuple(float(v) for v in np.asarray(value, np.float64).ravel())
    if not values:
        raise InputError(f"zbox's `{name}` is empty")
    return values


@dataclass(frozen=True)
class Composite:
    """Which rule each layer takes, and how the network is canonized first.

    Attributes:
      conv: every convolution's rule.
      linear: every ``nn.Linear``'s rule.
      first: the first convolution or linear layer's rule (``None``: as the others).
      layers: ``((layer name, rule), ...)``, rules for named layers, before all the above.
      stabilizer: the ``Norm`` rule's, at average-pool modules and residual sums.
      merge_batch_norm: merge each BatchNorm that reads a convolution's output into it.
      residual_sums: give residual additions the ``Norm`` rule (zennit's ResNet canonizer);
        otherwise their gradient copies the relevance to both branches.
      batch_norm: the rule of a BatchNorm left alone: ``None`` passes relevance on
        (zennit's ``Pass``), an ε rule treats it as the affine map it is (Captum's).
      max_pool_epsilon: ``None``: max-pools send relevance to their maximum (their
        gradient, zennit's); ε: Captum's ε rule, ``R_in = x ⊙ Jᵀ (R / s(y))``.
      scale_by_output: multiply the relevance by the target logit (Captum's ``LRP``
        starts from the logit, zennit from 1).
    """

    conv: Rule
    linear: Rule = field(default_factory=epsilon)
    first: Rule | None = None
    layers: tuple[tuple[str, Rule], ...] = ()
    stabilizer: float = STABILIZER
    merge_batch_norm: bool = True
    residual_sums: bool = True
    batch_norm: Rule | None = None
    max_pool_epsilon: float | None = None
    scale_by_output: bool = False

    def __post_init__(self):
        if self.batch_norm is not None and self.batch_norm.name != "epsilon":
            raise InputError(f"a BatchNorm takes the epsilon rule or none (None), got {self.batch_norm.name!r}")

    def rule(self, name: str, kind: str, first: bool) -> Rule:
        """The rule of layer ``name``, a ``"conv"`` or ``"linear"``."""
        for named, rule in self.layers:
            if named == name:
                return rule
        if first and self.first is not None:
            return self.first
        return self.conv if kind == "conv" else self.linear


def epsilon_plus(epsilon: float = STABILIZER, stabilizer: float = STABILIZER, **canonizers) -> Composite:
    """zennit ``EpsilonPlus``: z⁺ at convolutions, ε at linear layers."""
    return Composite(conv=zplus(stabilizer), linear=_epsilon(epsilon), stabilizer=stabilizer, **canonizers)


def epsilon_plus_flat(epsilon: float = STABILIZER, stabilizer: float = STABILIZER, **canonizers) -> Composite:
    """zennit ``EpsilonPlusFlat``: as :func:`epsilon_plus`, the first layer flat."""
    return Composite(conv=zplus(stabilizer), linear=_epsilon(epsilon), first=flat(stabilizer),
                     stabilizer=stabilizer, **canonizers)


def epsilon_gamma_box(low, high, epsilon: float = STABILIZER, gamma: float = 0.25, stabilizer: float = STABILIZER,
                      **canonizers) -> Composite:
    """zennit ``EpsilonGammaBox``: zᴮ at the first layer, γ at convolutions, ε at linear layers."""
    return Composite(conv=_gamma(gamma, stabilizer), linear=_epsilon(epsilon), first=zbox(low, high, stabilizer),
                     stabilizer=stabilizer, **canonizers)


def epsilon_alpha2_beta1(epsilon: float = STABILIZER, stabilizer: float = STABILIZER, **canonizers) -> Composite:
    """zennit ``EpsilonAlpha2Beta1``: α2β1 at convolutions, ε at linear layers."""
    return Composite(conv=alpha_beta(2, 1, stabilizer), linear=_epsilon(epsilon), stabilizer=stabilizer,
                     **canonizers)


def epsilon_alpha2_beta1_flat(epsilon: float = STABILIZER, stabilizer: float = STABILIZER,
                              **canonizers) -> Composite:
    """zennit ``EpsilonAlpha2Beta1Flat``: as :func:`epsilon_alpha2_beta1`, the first layer flat."""
    return Composite(conv=alpha_beta(2, 1, stabilizer), linear=_epsilon(epsilon), first=flat(stabilizer),
                     stabilizer=stabilizer, **canonizers)


def captum(epsilon: float = 1e-9) -> Composite:
    """Captum ``LRP``'s default rules: ε (1e-9) at every convolution, linear layer,
    BatchNorm, max- and average-pool, relevance passed through the ReLUs, no canonizers,
    the result scaled by the target logit."""
    rule = _epsilon(epsilon)
    return Composite(conv=rule, linear=rule, stabilizer=epsilon, merge_batch_norm=False, residual_sums=False,
                     batch_norm=rule, max_pool_epsilon=epsilon, scale_by_output=True)


_epsilon, _gamma = epsilon, gamma

# the composites by name (zennit's, and Captum's default rules); ``epsilon_gamma_box`` also
# needs the input's bounds
COMPOSITES = {
    "epsilon_plus": epsilon_plus,
    "epsilon_plus_flat": epsilon_plus_flat,
    "epsilon_gamma_box": epsilon_gamma_box,
    "epsilon_alpha2_beta1": epsilon_alpha2_beta1,
    "epsilon_alpha2_beta1_flat": epsilon_alpha2_beta1_flat,
    "captum": captum,
}


# ---------------------------------------------------------------- the backward passes


def stabilize(z, epsilon: float):
    """zennit's ``stabilize``: ``z + ε·sign(z)``, zero counted as positive."""
    return z + jnp.where(z >= 0, epsilon, -epsilon).astype(z.dtype)


def _transpose(layer, x, w, s):
    """Wᵀ s for the affine ``layer`` with weights ``w`` (its VJP; it does not depend on x)."""
    return jax.vjp(lambda v: layer(v, w, None), x)[1](s)[0]


def _positive(a):
    return None if a is None else jnp.maximum(a, 0)


def _negative(a):
    return None if a is None else jnp.minimum(a, 0)


def _bounds(values, x):
    """zbox's bounds broadcast to the input (NHWC: one value per channel, or one for all)."""
    bound = jnp.asarray(values, x.dtype)
    return jnp.broadcast_to(bound if bound.size > 1 else bound.reshape(()), x.shape)


def _relevance(layer, rule: Rule, x, w, b, g, nonnegative: bool = False, stack=None):
    """The relevance at the input of the affine ``layer(x, w, b)`` given ``g`` at its output.

    ``nonnegative``: ``x`` is known never to be negative (a ReLU's output, a max-pool of
    one): the terms of the negative inputs are zero, so the sign-split rules skip them —
    half of z⁺'s and αβ's convolutions, the same numbers.  ``stack``: the weights' (input,
    output) channel axes, when the layer takes any number of channels (see :func:`_sign_split`)."""
    eps = rule.stabilizer
    if rule.name == "epsilon":
        return x * _transpose(layer, x, w, g / stabilize(layer(x, w, b), eps))
    if rule.name in ("flat", "wsquare"):
        ones = jnp.ones_like(x)
        if rule.name == "flat":
            w, b = jnp.ones_like(w), None
        else:
            w, b = w * w, None if b is None else b * b
        return _transpose(layer, ones, w, g / stabilize(layer(ones, w, b), eps))
    if rule.name == "zbox":
        low, high = _bounds(rule.low, x), _bounds(rule.high, x)
        wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
        z = layer(x, w, b) - layer(low, wp, _positive(b)) - layer(high, wn, _negative(b))
        s = g / stabilize(z, eps)
        return x * _transpose(layer, x, w, s) - low * _transpose(layer, x, wp, s) - high * _transpose(layer, x, wn, s)
    if rule.name == "gamma":
        # weights raised where positive (``up``) or where negative (``down``); the bias terms
        # of the negative inputs are zero
        up_w, down_w = w + rule.gamma * jnp.maximum(w, 0), w + rule.gamma * jnp.minimum(w, 0)
        up_b = None if b is None else b + rule.gamma * jnp.maximum(b, 0)
        down_b = None if b is None else b + rule.gamma * jnp.minimum(b, 0)
        z = layer(x, w, b)
        return _sign_split(layer, stack, x, g, eps, nonnegative, [(up_w, down_w, up_b, (z > 0).astype(g.dtype)),
                                                                  (down_w, up_w, down_b, (z < 0).astype(g.dtype))])
    wp, wn = jnp.maximum(w, 0), jnp.minimum(w, 0)
    if rule.name == "zplus":
        return _sign_split(layer, stack, x, g, eps, nonnegative, [(wp, wn, _positive(b), 1.0)])
    return _sign_split(layer, stack, x, g, eps, nonnegative, [(wp, wn, _positive(b), rule.alpha),
                                                              (wn, wp, _negative(b), -rule.beta)])


def _sign_split(layer, stack, x, g, eps, nonnegative, terms):
    """``Σₖ x⁺ · aₖᵀ sₖ + x⁻ · cₖᵀ sₖ`` with ``sₖ = coefₖ · g / s(zₖ)`` and
    ``zₖ = layer(x⁺, aₖ, bₖ) + layer(x⁻, cₖ)``, for ``terms`` ``(aₖ, cₖ, bₖ, coefₖ)``: the
    sign-split rules (z⁺, αβ, γ).  The terms of x⁻ are zero when the input is never negative.

    With ``stack`` (the weights' input and output channel axes) the layer is taken once for
    all terms: [x⁺, x⁻] stacked on the channel axis, each term's [aₖ; cₖ] on the weights'
    input axis and the terms on their output axis, then one transpose, whose channels split
    back into x⁺'s and x⁻'s shares — the same products in one convolution (one im2col of
    the input, one col2im of the result) in place of up to four, and as many transposes."""
    xp, xn = (x, None) if nonnegative else (jnp.maximum(x, 0), jnp.minimum(x, 0))
    if stack is None:
        total = 0
        for a, c, b, coef in terms:
            z = layer(xp, a, b) if xn is None else layer(xp, a, b) + layer(xn, c, None)
            s = coef * g / stabilize(z, eps)
            r = xp * _transpose(layer, x, a, s)
            total = total + (r if xn is None else r + xn * _transpose(layer, x, c, s))
        return total
    in_axis, out_axis = stack
    inputs = x if xn is None else jnp.concatenate([xp, xn], axis=-1)
    w = jnp.concatenate([a if xn is None else jnp.concatenate([a, c], axis=in_axis) for a, c, _, _ in terms],
                        axis=out_axis)
    biases = [b for _, _, b, _ in terms]
    b = None if biases[0] is None else jnp.concatenate(biases)
    zs = jnp.split(layer(inputs, w, b), len(terms), axis=-1)
    s = jnp.concatenate([coef * g / stabilize(z, eps) for (_, _, _, coef), z in zip(terms, zs)], axis=-1)
    r = _transpose(layer, inputs, w, s)
    if xn is None:
        return x * r
    rp, rn = jnp.split(r, 2, axis=-1)
    return xp * rp + xn * rn


@functools.partial(jax.custom_vjp, nondiff_argnums=(0, 1, 6, 7))
def affine(layer, rule: Rule, x, w, b, extra=(), nonnegative: bool = False, stack=None):
    """``layer(x, w, b, *extra)`` (affine in x) whose backward pass is ``rule``'s; ``extra``
    (a tuple of arrays, e.g. the targets of a class layer) gets no cotangent;
    ``nonnegative``: ``x`` is known never to be negative; ``stack``: ``(input, output)``,
    the weights' channel axes, when ``layer`` takes inputs of any number of channels on
    the last axis and puts its output channels there (see :func:`_relevance`)."""
    return layer(x, w, b, *extra)


def _affine_fwd(layer, rule, x, w, b, extra, nonnegative, stack):
    return layer(x, w, b, *extra), (x, w, b, extra)


def _affine_bwd(layer, rule, nonnegative, stack, residuals, g):
    x, w, b, extra = residuals
    relevance = _relevance(lambda v, w_, b_: layer(v, w_, b_, *extra), rule, x, w, b, g, nonnegative, stack)
    return (relevance, jnp.zeros_like(w), None if b is None else jnp.zeros_like(b),
            jax.tree_util.tree_map(lambda e: None, extra))


affine.defvjp(_affine_fwd, _affine_bwd)


def normalized(operation, stabilizer: float):
    """``operation`` (linear, x ↦ y) with zennit's ``Norm`` rule: ``R_in = x ⊙ Jᵀ (R / s(y))``."""

    def forward(x):
        return operation(x)

    def backward(x, g):
        y, vjp = jax.vjp(operation, x)
        return (x * vjp(g / stabilize(y, stabilizer))[0],)

    function = jax.custom_vjp(forward)
    function.defvjp(lambda x: (forward(x), x), backward)
    return function


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def sum_norm(a, b, stabilizer: float):
    """``a + b`` whose relevance is split in proportion to ``a`` and ``b`` (zennit's ``Sum``
    with ``Norm``)."""
    return a + b


def _sum_norm_fwd(a, b, stabilizer):
    return a + b, (a, b)


def _sum_norm_bwd(stabilizer, residuals, g):
    a, b = residuals
    s = g / stabilize(a + b, stabilizer)
    return a * s, b * s


sum_norm.defvjp(_sum_norm_fwd, _sum_norm_bwd)


@functools.partial(jax.custom_vjp, nondiff_argnums=(0,))
def passthrough(function, x, *args):
    """``function(x, *args)`` whose backward pass hands the relevance on to ``x`` unchanged
    (zennit's ``Pass``: activation modules, BatchNorms not merged into a convolution)."""
    return function(x, *args)


def _passthrough_fwd(function, x, *args):
    return function(x, *args), len(args)


def _passthrough_bwd(function, count, g):
    return (g,) + (None,) * count


passthrough.defvjp(_passthrough_fwd, _passthrough_bwd)
