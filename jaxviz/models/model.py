"""The model object every jaxviz function takes: parameters plus a pure ``apply``."""

from __future__ import annotations

import functools
import os
from typing import Any, Mapping, Sequence

import flax.struct
import jax
import jax.numpy as jnp

from jaxviz import _checks, _chunks
from jaxviz.models import catalog, network as _network, weights as _weights
from jaxviz.models.architecture import Architecture


@flax.struct.dataclass
class Model:
    """A network with its parameters.

    A pytree: ``params`` are its leaves and ``arch`` is static, so a ``Model`` can be passed
    straight through ``jax.jit``.  Calling it on an NHWC batch returns logits (N, 1000).

    Attributes:
      params: ``{module path: {leaf: array}}``: a convolution's ``kernel`` (HWIO) and
        ``bias``, a linear layer's ``kernel`` (in, out) and ``bias``, a BatchNorm's ``scale``,
        ``bias``, ``mean`` and ``var``.
      arch: the architecture's torchvision name (``jaxviz.ARCHITECTURES``), or your own
        network's description (:func:`jaxviz.from_flax`, :func:`jaxviz.from_function`).
    """

    params: Any
    arch: str | _network.Network = flax.struct.field(pytree_node=False, default="squeezenet1_1")

    @property
    def architecture(self) -> Architecture:
        """What generic code may ask of the network: layer names, defaults, limits."""
        return catalog.architecture(self.arch)

    @property
    def layer_names(self) -> tuple[str, ...]:
        return self.architecture.layer_names

    @property
    def dtype(self):
        return next(p.dtype for p in jax.tree_util.tree_leaves(self.params) if jnp.issubdtype(p.dtype, jnp.floating))

    def apply(
        self,
        params,
        x,
        *,
        capture: Sequence[str] | None = None,
        perturb: Mapping[str, jax.Array] | None = None,
        guided: bool = False,
        target: jax.Array | None = None,
        replace: Mapping[str, jax.Array] | None = None,
    ):
        """Pure forward pass: logits (N, 1000), or ``{layer: output}`` for ``capture``.

        ``guided=True`` gives the ``nn.ReLU`` modules guided backprop's backward pass (what
        Captum's hooks reach); ``guided="all"`` every ReLU-like activation (functional ReLUs,
        ReLU6, Hardswish); ``guided=(rule, scope)`` another backward rule, ``"guided"``,
        ``"deconvolution"`` or ``"deeplift"`` (whose batch is inputs followed by as many
        references, and which also changes the max-pools), at scope ``"modules"`` or
        ``"all"``; ``("deeplift", scope, layer)``: DeepLift on inputs followed by one
        reference shared by all of them, made pairs from the first max-pool (which must cut
        the network) to ``layer`` (one of
        :func:`jaxviz.models.network.shared_reference_layers` that cuts the network, or
        ``"input"`` when there is no max-pool), and at a class layer evaluated for
        ``target`` (which is then the pairs' targets); ``guided=("lrp", composite)`` LRP's
        rules at every layer (:class:`jaxviz.relevance.Composite`; jaxviz's architectures
        only).  The forward
        pass is unchanged.
        ``target`` (N,): the output is each image's logit for its own class, (N,), and the
        classifier is evaluated for that class alone (what gradient methods need).
        ``replace`` ``{layer: value}``: the layer's output is ``value`` (any batch size)
        instead of what it computes; when nothing after it reads an earlier value (a cut of
        the network, as between two SqueezeNet Fire blocks), the layers before it are not
        evaluated and ``x`` only gives their shapes.
        """
        capture = None if capture is None else tuple(capture)
        _check_layers(self.architecture, capture or (), tuple(perturb or ()) + tuple(replace or ()),
                      target is not None)
        guided = _network.check_guided(guided)
        if guided and len(guided) == 3:
            _check_shared_reference(self.architecture, guided)
        return _apply(self.arch, guided, capture, params, x, perturb, target, replace)

    def classify(self, params, features, *, target: jax.Array | None = None):
        """Pure: the head from ``architecture.head_input``'s output: logits (N, 1000), or
        with ``target`` (N,) each image's logit for its own class (N,), that class alone."""
        if self.architecture.head_input is None:
            raise _checks.InputError(f"{self.architecture.name} has no separate head: use apply")
        return _network.run_head(catalog.network(self.arch), params, features, target=target)

    def __call__(self, x):
        x = _checks.check_images(x, architecture=self.architecture)
        return _logits(self, x.astype(self.dtype))

    def astype(self, dtype) -> "Model":
        """The same model with floating parameters cast to ``dtype`` (float64 needs
        ``jax_enable_x64``)."""
        cast = lambda p: jnp.asarray(p, dtype) if jnp.issubdtype(jnp.result_type(p), jnp.floating) else p  # noqa: E731
        return self.replace(params=jax.tree_util.tree_map(cast, self.params))

    @property
    def num_params(self) -> int:
        """Learnable parameters as torchvision counts them: BatchNorm's running statistics
        (``mean``/``var``, Flax's ``batch_stats``) are buffers and not counted."""
        def buffer(path) -> bool:
            keys = [getattr(k, "key", None) for k in path]
            return "batch_stats" in keys or (isinstance(self.arch, str) and keys[-1] in ("mean", "var"))

        leaves = jax.tree_util.tree_leaves_with_path(self.params)
        return sum(int(p.size) for path, p in leaves if not buffer(path))


def _check_shared_reference(architecture: Architecture, guided) -> None:
    _, scope, layer = guided
    if layer != _network.INPUT:
        architecture.check_layers(layer)
    if layer not in _network.shared_reference_layers(architecture.network, scope):
        raise _checks.InputError(f"DeepLift's reference cannot be shared from {layer!r} of {architecture.name} "
                                 f"(jaxviz.models.network.shared_reference_layers lists where it can)")


def _check_layers(architecture: Architecture, capture, perturbed, for_target: bool) -> None:
    architecture.check_layers(capture + perturbed)
    if for_target:
        held = sorted((set(capture) | set(perturbed)) & (architecture.class_layers - {architecture.output}))
        if held:
            raise _checks.InputError(
                f"{', '.join(held)} hold one channel per class: they cannot be captured or perturbed with "
                f"`target`, which evaluates {architecture.class_layer} for each image's class alone")


@functools.partial(jax.jit, static_argnums=(0, 1, 2))
def _apply(arch, guided, capture, params, x, perturb, target, replace=None):
    # One compiled program per shape even when called outside ``jit``: run op by op, each
    # of the hundreds of small ops would be compiled (and kept, with its memory maps) alone.
    return _network.run(catalog.network(arch), params, x, capture=capture, perturb=perturb, replace=replace,
                        guided=guided, target=target)


def batch_logits(model: Model, x, target: jax.Array | None = None):
    """Logits of a checked batch in the model's dtype, or with ``target`` each image's logit
    for its own class, a few images at a time on CPU (:mod:`jaxviz._chunks`); pure, for use
    inside ``jit``."""
    if target is None:
        return _chunks.map_chunks(lambda v: model.apply(model.params, v), x)
    return _chunks.map_chunks(lambda v, t: model.apply(model.params, v, target=t), x, target)


_logits = jax.jit(batch_logits)


def load_model(
    arch: str = "squeezenet1_1",
    weights: str | os.PathLike | None = None,
    *,
    download: bool | None = None,
    dtype=jnp.float32,
) -> Model:
    """Loads a pretrained network.

    Weights are found in this order: ``weights`` (a file path), ``$JAXVIZ_WEIGHTS``,
    jaxviz's cache, torchvision's cache, torchvision's download.

    Args:
      arch: a torchvision architecture name (``jaxviz.ARCHITECTURES``); default SqueezeNet 1.1.
      weights: path to a ``.pth``, ``.npz`` or ``.safetensors`` file.
      download: allow torchvision's download as a last resort (default: unless
        ``$JAXVIZ_OFFLINE`` is set).
      dtype: parameter dtype.

    Example:
      >>> model = jaxviz.load_model()
      >>> logits = model(jaxviz.preprocess(images))
    """
    catalog.check_arch(arch)
    source = _weights.resolve_weights(arch, weights, download=download)
    params, _ = _weights.load_params(source, arch)
    return Model(jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params), arch)


def from_torchvision(module_or_state_dict, arch: str | None = None, *, dtype=jnp.float32) -> Model:
    """Builds a :class:`Model` from a torchvision module or its state_dict.

    Args:
      module_or_state_dict: e.g. ``torchvision.models.resnet50()`` or its state_dict.
      arch: architecture; default: detected from the state_dict's keys and shapes.
      dtype: the parameters' dtype (float64 needs ``jax_enable_x64``; float64 tensors then
        keep every bit).
    """
    state_dict = module_or_state_dict
    if hasattr(state_dict, "state_dict") and callable(state_dict.state_dict):
        state_dict = state_dict.state_dict()
    if not isinstance(state_dict, Mapping):
        raise _checks.InputTypeError(
            f"`module_or_state_dict` must be a torch module or a state_dict, got {type(state_dict).__name__}"
        )
    if arch is None:
        arch = _weights.identify_arch(state_dict, "state_dict")
    params = _weights.state_dict_to_params(state_dict, arch, keep_float64=jnp.dtype(dtype) == jnp.float64)
    return Model(jax.tree_util.tree_map(lambda p: jnp.asarray(p, dtype), params), arch)


def init_model(key, arch: str = "squeezenet1_1", *, dtype=jnp.float32) -> Model:
    """A randomly initialised model (torchvision's initialisation schemes)."""
    return Model(_network.init_params(catalog.network(catalog.check_arch(arch)), key, dtype), arch)


@functools.partial(jax.jit, static_argnames=("layers",))
def _layer_outputs(model: Model, x, layers: tuple[str, ...]):
    return model.apply(model.params, x, capture=layers)


def layer_activation(model: Model, x, layer: str | Sequence[str]):
    """Output of one layer (NHWC), or a dict of several, in one forward pass.

    Captum ``LayerActivation`` equivalent.

    Args:
      model: a :class:`Model`.
      x: (N, H, W, 3) normalised images.
      layer: torchvision module path (``"layer4.1"``) or a sequence of them.
    """
    x = _checks.check_images(x, architecture=model.architecture)
    names = model.architecture.check_layers((layer,) if isinstance(layer, str) else tuple(layer))
    outputs = _layer_outputs(model, x.astype(model.dtype), names)
    return outputs[layer] if isinstance(layer, str) else outputs
