"""The scoring layer every method stands on: checked arguments, each image's score for its
own target, and gradients of those scores at the input or at any layer, a few images at a
time.  Attribution and synthesis both use it; neither imports the other."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz import _checks, _chunks
from jaxviz.errors import InputError


@jax.tree_util.register_pytree_node_class
class Neuron:
    """One unit of a layer's output per image, as what a method explains instead of a class
    (Captum's ``neuron_selector``): ``layer`` and ``index`` (N, k), each image's unit in
    PyTorch's order — (channel, row, column) of a convolutional output, (feature,) of a
    linear one.  Build it with :func:`prepare_neuron`."""

    def __init__(self, layer: str, index):
        self.layer, self.index = layer, index

    def tree_flatten(self):
        return (self.index,), self.layer

    @classmethod
    def tree_unflatten(cls, layer, children):
        return cls(layer, children[0])


def prepare_neuron(model, x, layer: str, neuron):
    """Checks the images and a neuron of ``layer`` — an int, a tuple in PyTorch's order, or
    (N, k) one per image; returns x in the model's dtype and a :class:`Neuron`."""
    architecture = model.architecture
    x = _checks.check_images(x, architecture=architecture)
    (layer,) = architecture.check_layers((layer,))
    if isinstance(neuron, Neuron):  # prepared already (e.g. by smooth, around the method)
        if neuron.layer != layer or neuron.index.shape[0] != x.shape[0]:
            raise InputError(f"a neuron of {neuron.layer} for {neuron.index.shape[0]} images, asked for {layer} "
                             f"and {x.shape[0]} images")
        return x.astype(model.dtype), neuron
    shape = jax.eval_shape(lambda v: model.apply(model.params, v, capture=(layer,)), x)[layer].shape[1:]
    torch_shape = (shape[-1],) + tuple(shape[:-1])  # NHWC → (C, H, W)
    index = np.asarray(neuron)
    if not np.issubdtype(index.dtype, np.integer):
        raise InputError(f"`target` (the neuron) must hold integer indices, got {neuron!r}")
    n, k = x.shape[0], len(torch_shape)
    if index.ndim <= 1 and index.size == k:  # one neuron for every image
        index = np.broadcast_to(index.reshape(1, k), (n, k))
    if index.shape != (n, k):
        raise InputError(f"`target` must pick one unit of {layer}'s output {torch_shape} (PyTorch's order): "
                         f"{k} indices, or ({n}, {k}) one per image; "
                         f"got shape {np.shape(neuron)}")
    if ((index < 0) | (index >= np.array(torch_shape))).any():
        raise InputError(f"`target` indices out of range for {layer}'s output {torch_shape}: {index.tolist()}")
    return x.astype(model.dtype), Neuron(layer, jnp.asarray(index, jnp.int32))


def neuron_method(function):
    """Marks a method whose ``target`` is a unit of its ``layer`` (:func:`prepare_neuron`), so
    that wrappers such as ``smooth`` check it as one."""
    function.neuron_target = True
    return function


def neuron_values(outputs, index):
    """(N,) each image's unit ``index[n]`` (PyTorch order) of a layer's NHWC or (N, F) output."""
    rows = jnp.arange(outputs.shape[0])
    if outputs.ndim == 4:
        return outputs[rows, index[:, 1], index[:, 2], index[:, 0]]
    return outputs[rows, index[:, 0]]


def repeat_targets(target, times: int):
    """The targets of a batch repeated ``times`` over (class indices or a :class:`Neuron`)."""
    return jax.tree_util.tree_map(lambda a: jnp.tile(a, (times,) + (1,) * (a.ndim - 1)), target)


def prepare(model, x, target, *, layers=()):
    """Checks the arguments every method takes; returns x in the model's dtype and target
    (class indices, or a :class:`Neuron` from :func:`prepare_neuron`)."""
    architecture = model.architecture
    x = _checks.check_images(x, architecture=architecture)
    if isinstance(target, Neuron):  # checked by prepare_neuron
        if target.index.shape[0] != x.shape[0]:
            raise InputError(f"the neuron holds {target.index.shape[0]} indices for {x.shape[0]} images")
    else:
        target = _checks.check_target(target, x.shape[0], num_classes=architecture.num_classes)
    architecture.check_layers(tuple(layers))
    return x.astype(model.dtype), target


def target_logits(model, x, target, *, capture=(), perturb=None, guided: bool = False, replace=None):
    """(N,) each image's logit for its own target (or the value of its :class:`Neuron`), and
    ``{layer: output}`` for ``capture``.

    The head is evaluated for the targets alone unless a layer holding every class is
    captured, perturbed or replaced.  Summing the result over the batch gives each image its
    own gradient.  ``replace``: layers whose output is the given value (see
    :meth:`jaxviz.Model.apply`; where such a layer cuts the network, nothing before it is
    computed).
    """
    architecture = model.architecture
    output = architecture.output
    capture, perturb, replace = tuple(capture), dict(perturb or {}), dict(replace or {})
    if isinstance(target, Neuron):  # the forward pass stops after the neuron's layer
        outputs = model.apply(model.params, x, capture=capture + (target.layer,), perturb=perturb, guided=guided,
                              replace=replace)
        values = outputs[target.layer] if target.layer in capture else outputs.pop(target.layer)
        return neuron_values(values, target.index), outputs
    if architecture.class_layers.isdisjoint(capture + tuple(perturb) + tuple(replace)):
        outputs = model.apply(model.params, x, capture=capture + (output,), perturb=perturb,
                              guided=guided, target=target, replace=replace)
        return outputs.pop(output), outputs
    outputs = model.apply(model.params, x, capture=capture + (output,), perturb=perturb, guided=guided,
                          replace=replace)
    logits = outputs[output] if output in capture else outputs.pop(output)
    return jnp.take_along_axis(logits, target[:, None], axis=1)[:, 0], outputs


def batch_target_logits(model, x, target):
    """(N,) target logits of a checked batch, a few images at a time (:mod:`jaxviz._chunks`)."""
    return _chunks.map_chunks(lambda v, t: target_logits(model, v, t)[0], x, target)


def target_probabilities(model, x, target):
    """(N,) each image's softmax probability of its own target (the whole head is
    evaluated: the softmax needs every class)."""
    logits = model.apply(model.params, x)
    return jnp.take_along_axis(jax.nn.softmax(logits, axis=-1), target[:, None], axis=1)[:, 0]


def batch_target_probabilities(model, x, target):
    """:func:`target_probabilities` of a checked batch, a few images at a time."""
    return _chunks.map_chunks(lambda v, t: target_probabilities(model, v, t), x, target)


@jax.tree_util.register_pytree_node_class
class Repeats:
    """Which requests of a batch ask about the same image (several targets of one image):
    ``requests`` (U, K) each distinct image's requests (the shorter rows padded with their
    first), ``slots`` (N,) each request's place in a (U·K) result.  Found by
    :func:`find_repeats`."""

    def __init__(self, requests, slots):
        self.requests, self.slots = requests, slots

    @property
    def images(self):
        """(U,) the first request of each distinct image."""
        return self.requests[:, 0]

    def tree_flatten(self):
        return (self.requests, self.slots), None

    @classmethod
    def tree_unflatten(cls, _, children):
        return cls(*children)


# targets evaluated together per image: a gradient's backward pass holds this many times one
# image's activation gradients (a 9th target of an image starts another group)
MOST_TARGETS_PER_PASS = 8


def _on_one_device(array) -> bool:
    sharding = getattr(array, "sharding", None)
    return sharding is None or len(sharding.device_set) == 1


def find_repeats(x, target, *also) -> Repeats | None:
    """The requests of a concrete batch that share their image (and the rows of ``also``,
    e.g. their baselines or feature masks), so that each image's forward passes serve all
    its targets (:func:`per_image`); ``None`` when every request has its own image, when
    ``target`` is a :class:`Neuron`, or inside a traced function.  Candidates are found from
    a strided sample of each image and then compared whole; an image's requests go in groups
    of at most :data:`MOST_TARGETS_PER_PASS`.  An array of ``also`` with one row is every
    request's, and tells none apart."""
    arrays = (x,) + tuple(a for a in also if a.shape[0] != 1)
    if isinstance(target, Neuron) or x.shape[0] < 2 or not all(_checks.is_concrete(a) and _on_one_device(a)
                                                                for a in arrays):
        return None  # inside a traced function, or a batch split over devices (kept as it is split)
    sample = np.concatenate([np.asarray(a[:, ::7, ::7]).reshape(a.shape[0], -1) for a in arrays], axis=1)
    groups: dict[bytes, list[list[int]]] = {}
    host = []  # the whole arrays, copied to the host once a sample matches

    def equal(i, j):
        if not host:
            host.extend(np.asarray(a) for a in arrays)
        return all(np.array_equal(a[i], a[j]) for a in host)

    for n in range(x.shape[0]):
        candidates = groups.setdefault(sample[n].tobytes(), [])
        same = next((g for g in candidates if equal(g[0], n)), None)
        if same is None or len(same) == MOST_TARGETS_PER_PASS:
            candidates.insert(0, [n])  # a full group stays behind the new one
        else:
            same.append(n)
    images = [g for candidates in groups.values() for g in candidates]
    if len(images) == x.shape[0]:
        return None
    images.sort()
    width = max(len(g) for g in images)
    slots = np.empty(x.shape[0], np.int32)
    for u, g in enumerate(images):
        slots[g] = u * width + np.arange(len(g))
    requests = np.array([g + [g[0]] * (width - len(g)) for g in images], np.int32)
    return Repeats(jnp.asarray(requests), jnp.asarray(slots))


def per_image(body, repeats: Repeats | None, x, target, *per_request):
    """``body(x, target, *per_request)``, a method's computation on a batch, evaluated once
    per distinct image for all its targets when ``repeats`` (:func:`find_repeats`) says
    that requests share images: ``body`` is vectorised over each image's targets, so what
    does not depend on the target — the forward pass, every perturbed or interpolated
    forward pass — runs once and only the rest (the backward passes, the scores read out)
    once per target.  Every leaf of the result has the batch first; each request gets what
    it gets alone."""
    if repeats is None:
        return body(x, target, *per_request)
    targets = target[repeats.requests]  # (U, K)
    u, k = targets.shape

    def each_target(images, targets, *rows):
        return jax.vmap(lambda t: body(images, t, *rows), in_axes=1, out_axes=1)(targets)

    # as many images per chunk as hold a chunk's pixels over their K backward passes
    chunk = _chunks.chunk_size(u, x.shape[1], x.shape[2] * k)
    out = _chunks.map_chunks(each_target, x[repeats.images], targets, *(a[repeats.images] for a in per_request),
                             chunk=chunk)
    return jax.tree_util.tree_map(lambda leaf: ungroup(leaf, repeats), out)


def ungroup(grouped, repeats: Repeats):
    """A (U, K, …) result per image and target as (N, …), one per request."""
    u, k = repeats.requests.shape
    return grouped.reshape((u * k,) + grouped.shape[2:])[repeats.slots]


def input_gradients(model, x, target, *, guided: bool = False, chunk: int | None = None, then=None):
    """∇ₓ of the target scores, (N, H, W, C), ``chunk`` images at a time (default: by
    :func:`jaxviz._chunks.chunk_size`); ``then(images, gradients)``: what each chunk
    returns instead, computed inside the loop: the stacked output is written once, not
    read and written again after it (benchmarks/results/output-in-loop/)."""

    def grads(v, t):
        g = jax.grad(lambda u: target_logits(model, u, t, guided=guided)[0].sum())(v)
        return g if then is None else then(v, g)

    return _chunks.map_chunks(grads, x, target, chunk=chunk)


def layer_gradients_and_eval(model, x, target, layer: str, *, guided=False, chunk: int | None = None):
    """The output of ``layer`` and the gradient of the target scores with respect to it,
    ``chunk`` images at a time.

    A zero perturbation is added to the layer's output: its gradient is the layer
    gradient, and the same forward pass returns the activation.  The backward pass stops
    at the layer.
    """
    activations, grads = layers_gradients_and_eval(model, x, target, (layer,), guided=guided, chunk=chunk)
    return activations[0], grads[0]


def layers_gradients_and_eval(model, x, target, layers: tuple[str, ...], *, guided=False,
                              chunk: int | None = None, score=None):
    """:func:`layer_gradients_and_eval` at several layers from one forward and one backward
    pass (under a backward rule with ``guided``; of ``score`` as in :func:`layer_scores`): a
    tuple of outputs and a tuple of gradients, in the order of ``layers``."""
    evaluate = functools.partial(gradient_pass, model, layers=tuple(layers), guided=guided, with_input=False,
                                 score=score)
    return _chunks.map_chunks(evaluate, x, target, chunk=chunk)


def layer_and_input_gradients(model, x, target, layer: str, *, guided: bool = False, chunk: int | None = None):
    """``layer``'s output, the target scores' gradient there and at the input, from one
    forward and one backward pass (``guided``: with guided-backprop ReLUs)."""
    evaluate = functools.partial(gradient_pass, model, layers=(layer,), guided=guided, with_input=True)
    (activation,), (grads,), input_grads = _chunks.map_chunks(evaluate, x, target, chunk=chunk)
    return activation, grads, input_grads


def layer_outputs(model, x, layers: tuple[str, ...], *, chunk: int | None = None):
    """The outputs of ``layers`` (a tuple, in their order), ``chunk`` images at a time; the
    forward pass stops after the last of them."""
    return _chunks.map_chunks(lambda v: tuple(model.apply(model.params, v, capture=layers)[name] for name in layers),
                              x, chunk=chunk)


def layer_scores(model, x, target, layers: tuple[str, ...], deltas, *, guided=False, score=None):
    """Σ over the batch of the target scores with ``deltas`` added to the outputs of
    ``layers``, and those outputs (a tuple).  ``score``: ``(logits (N, K), target) → (N,)``
    instead of each image's target logit (every class is then evaluated)."""
    perturb = dict(zip(layers, deltas))
    if score is None:
        scores, outputs = target_logits(model, x, target, capture=layers, perturb=perturb, guided=guided)
    else:
        output = model.architecture.output
        outputs = model.apply(model.params, x, capture=tuple(layers) + (output,), perturb=perturb, guided=guided)
        scores = score(outputs[output], target)
    return scores.sum(), tuple(outputs[name] for name in layers)


def zero_deltas(model, x, layers: tuple[str, ...]):
    """Zeros shaped as the outputs of ``layers`` for ``x``: the perturbations whose gradient
    is the layers' gradient."""
    shapes = jax.eval_shape(lambda: model.apply(model.params, x, capture=layers))
    return tuple(jnp.zeros(shapes[name].shape, shapes[name].dtype) for name in layers)


def gradient_pass(model, x, target, layers: tuple[str, ...], *, guided=False, with_input: bool = False, score=None):
    """One forward and one backward pass over a batch (no chunking): the outputs of
    ``layers``, the target scores' gradients there and, ``with_input``, at the input:
    ``(outputs, grads)`` or ``(outputs, grads, input_grads)``, tuples in the order of
    ``layers``; ``score`` as in :func:`layer_scores`.  Inside a compiled function, what
    the caller does not use is not computed."""
    layers = tuple(layers)

    def total(v, deltas):
        return layer_scores(model, v, target, layers, deltas, guided=guided, score=score)

    deltas = zero_deltas(model, x, layers)
    if not with_input:
        grads, activations = jax.grad(lambda d: total(x, d), has_aux=True)(deltas)
        return activations, grads
    (input_grads, grads), activations = jax.grad(total, argnums=(0, 1), has_aux=True)(x, deltas)
    return activations, grads, input_grads
