"""The attribution subcommands: one declaration each (options, computation, files)."""

from __future__ import annotations

import dataclasses
import importlib

import numpy as np

import jaxviz
from jaxviz import choices, figures
from jaxviz.cli.outputs import array_files, png_bytes, side_by_side
from jaxviz.cli.registry import Method, Option, per_image_keys, per_image_normal, positive, public_function
from jaxviz.errors import InputError


def _abs_heat(attribution, image_shape, options):
    """(H, W, C) attribution → (H, W) in [0, 1]: max |·| over channels, Captum's 2 % clip."""
    return figures.percentile_clip(figures.channel_max(attribution[None]), outlier_perc=options["outlier_perc"])[0]


def _cam_heat(cam, image_shape, options):
    """(h, w) GradCAM → image size, bicubic, min–max (the course's display)."""
    return figures.minmax(figures.resize_maps(cam[None], image_shape))[0]


def _attribution_saver(heat_fn, main="attribution"):
    def save(image, arrays, options, arrays_format, wanted_figures):
        attribution = np.asarray(arrays[main], np.float32)
        extras = {k: np.asarray(v) for k, v in arrays.items() if k != main}
        files = array_files(attribution, extras, arrays_format)
        heat = heat_fn(attribution, image.shape[:2], options)
        if "map" in wanted_figures:
            files[".map.png"] = png_bytes(np.round(heat * 255).astype(np.uint8))
        blended = (figures.overlay(image, heat, alpha=options["alpha"])
                   if wanted_figures & {"overlay", "grid"} else None)
        if "overlay" in wanted_figures:
            files[".overlay.png"] = png_bytes(blended)
        if "grid" in wanted_figures:
            files[".grid.png"] = png_bytes(side_by_side([image, figures.colorize(heat, "hot"), blended]))
        return files, {k: v.tolist() for k, v in extras.items()}

    return save


DISPLAY = (
    Option("alpha", float, 0.5, "opacity of the heat map in overlays (default 0.5)"),
    Option("outlier_perc", float, 2.0, "heat-map clip: top percent of |attribution| mass saturated (default 2, Captum's)"),
)
LAYER = Option("layer", str, None, "layer (torchvision module path; default: the model's last convolutional block)",
               kind="layer")
TARGET = Option("target", int, None, "class for every image (default: labels file, .npz y, else top-1)",
                kind="class")
SEED = Option("seed", int, 0, "random seed (each image's noise comes from the seed and its name)")
RULE = Option("rule", str, "modules", "activations whose backward pass changes: 'modules', the nn.ReLU modules "
              "(Captum's), or 'all' ReLU-like ones (default modules)", choices=choices.GUIDED_RULES)
BASELINE = Option("baseline", float, 0.0, "baseline value in normalised units (default 0: the mean colour)")
FEATURES = (
    Option("segments", str, "slic", "features: scikit-image superpixels or square patches (default slic)",
           choices=(*choices.SEGMENTATIONS, "patches")),
    Option("n_segments", int, 50, "SLIC segments per image (default 50)"),
    Option("patch", int, 16, "patch side in pixels, with --segments patches (default 16)"),
)
PERTURBATIONS_PER_EVAL = Option("perturbations_per_eval", int, 16,
                                "perturbed inputs per forward pass (memory bound, default 16)")
BASELINES = Option("baselines", float, [-1.0, 0.0, 1.0], "baseline distribution: constant images at these values, "
                   "normalised units (default -1 0 1)", many=True)


def _saliency(model, x, target):
    return {"attribution": jaxviz.saliency(model, x, target)}


def _guided_backprop(model, x, target, options):
    return {"attribution": jaxviz.guided_backprop(model, x, target, rule=options["rule"])}


def _input_x_gradient(model, x, target):
    return {"attribution": jaxviz.input_x_gradient(model, x, target)}


def _deconvolution(model, x, target, options):
    return {"attribution": jaxviz.deconvolution(model, x, target, rule=options["rule"])}


def _deeplift(model, x, target, options):
    attribution, delta = jaxviz.deeplift(model, x, target, baselines=options["baseline"], rule=options["rule"],
                                         return_convergence_delta=True)
    return {"attribution": attribution, "delta": delta}


def _constant_images(values, x):
    import jax.numpy as jnp

    return jnp.stack([jnp.full(x.shape[1:], v, x.dtype) for v in values])


def _composite(options):
    from jaxviz.attribution.lrp import composite_named

    composite = composite_named(options["composite"])
    if options["no_canonizers"]:
        composite = dataclasses.replace(composite, merge_batch_norm=False, residual_sums=False)
    return composite


def _lrp(model, x, target, options):
    return {"attribution": jaxviz.lrp(model, x, target, composite=_composite(options))}


def _deeplift_shap(model, x, target, options):
    return {"attribution": jaxviz.deeplift_shap(model, x, target, baselines=_constant_images(options["baselines"], x),
                                                rule=options["rule"])}


def _gradient_shap_options(x, seeds, options):
    import jax
    import jax.numpy as jnp

    from jaxviz.attribution.gradient_shap import sample_draws

    n, baselines = options["n_samples"], _constant_images(options["baselines"], x)
    # each image's draws come from the seed and its name, whatever batch it is in
    per_image = jax.vmap(lambda key: sample_draws(key, n, 1, baselines.shape[0], x.shape[1:], options["stdevs"],
                                                  x.dtype))(per_image_keys(options["seed"], seeds))
    indices, noise, alphas = (jnp.moveaxis(d[:, :, 0], 0, 1) for d in per_image)  # (N, S, 1, …) → (S, N, …)
    return dict(baselines=baselines, n_samples=n, stdevs=options["stdevs"], baseline_indices=indices, noise=noise,
                alphas=alphas, internal_batch_size=options["internal_batch_size"])


def _gradient_shap(model, x, target, seeds, options):
    return {"attribution": jaxviz.gradient_shap(model, x, target, **_gradient_shap_options(x, seeds, options))}


# ------------------------------------------------------------------ neuron variants


def _layer(model, options):
    """``--layer``, or the model's last convolutional block."""
    return options["layer"] or model.architecture.default_layer


def _neuron(model, x, layer, options):
    """``--neuron``, or each image's most active unit of ``layer`` (PyTorch's order)."""
    from jaxviz import scoring

    if options["neuron"]:
        return tuple(options["neuron"])
    (outputs,) = scoring.layer_outputs(model, x, (layer,))
    outputs = np.asarray(outputs)
    flat = outputs.reshape(len(outputs), -1).argmax(axis=1)
    position = np.stack(np.unravel_index(flat, outputs.shape[1:]), axis=1)  # NHWC order
    return position[:, [2, 0, 1]] if outputs.ndim == 4 else position


def _neuron_computation(function, **names):
    """A neuron method's computation: ``function`` names the jaxviz function, ``names`` maps
    its keywords to option names."""
    public_function(function)

    def compute(model, x, options):
        layer = _layer(model, options)
        kwargs = {keyword: options[name] for keyword, name in names.items()}
        neuron = _neuron(model, x, layer, options)
        return {"attribution": getattr(jaxviz, function)(model, x, neuron, layer=layer, **kwargs)}

    return compute


def _neuron_gradient_shap(model, x, seeds, options):
    layer = _layer(model, options)
    return {"attribution": jaxviz.neuron_gradient_shap(model, x, _neuron(model, x, layer, options), layer=layer,
                                                       **_gradient_shap_options(x, seeds, options))}


# ------------------------------------------------------------------ layer variants


def _layer_heat(attribution, image_shape, options):
    """(h, w, c) layer attribution → (H, W) in [0, 1]: |Σ over channels|, bicubic, min–max."""
    return figures.minmax(figures.resize_maps(np.abs(attribution.sum(axis=-1))[None], image_shape))[0]


def _layer_computation(function, **names):
    """A layer method's computation: ``function`` names the jaxviz function, ``names`` maps
    its keywords to option names."""
    public_function(function)

    def compute(model, x, target, options):
        layer = _layer(model, options)
        kwargs = {keyword: options[name] for keyword, name in names.items()}
        return _spatial(layer, getattr(jaxviz, function)(model, x, target, layer=layer, **kwargs))

    return compute


def _spatial(layer, attribution):
    if attribution.ndim != 4:
        raise InputError(f"{layer}'s output is not spatial: its attributions cannot be drawn over the image "
                         f"(use the Python API)")
    return {"attribution": attribution}


def _layer_gradient_shap(model, x, target, seeds, options):
    layer = _layer(model, options)
    return _spatial(layer, jaxviz.layer_gradient_shap(model, x, target, layer=layer,
                                                      **_gradient_shap_options(x, seeds, options)))


def _layer_lrp(model, x, target, options):
    layer = _layer(model, options)
    return _spatial(layer, jaxviz.layer_lrp(model, x, target, layer=layer, composite=_composite(options)))


def _layer_feature_ablation(model, x, target, options):
    from jaxviz import scoring

    layer = _layer(model, options)
    mask = None
    if options["ablate"] == "channels":  # one feature per channel, PyTorch's (1, C, 1, …) layout
        (outputs,) = scoring.layer_outputs(model, x[:1], (layer,))
        mask = np.arange(outputs.shape[-1]).reshape((1, -1) + (1,) * (outputs.ndim - 2))
    return _spatial(layer, jaxviz.layer_feature_ablation(
        model, x, target, layer=layer, layer_mask=mask, layer_baselines=options["baseline"],
        perturbations_per_eval=options["perturbations_per_eval"]))


def _neuron_conductance(model, x, target, options):
    layer = _layer(model, options)
    return {"attribution": jaxviz.neuron_conductance(model, x, target, layer=layer,
                                                     neuron=_neuron(model, x, layer, options),
                                                     n_steps=options["n_steps"], baselines=options["baseline"])}


N_STEPS = Option("n_steps", int, 50, "Gauss–Legendre steps (default 50)")
LRP_OPTIONS = (
    Option("composite", str, "epsilon_plus", "rules per layer kind (zennit's composites, or 'captum': Captum LRP's "
           "defaults; default epsilon_plus)", choices=choices.LRP_COMPOSITES),
    Option("no_canonizers", bool, False, "keep BatchNorms apart from their convolutions and residual sums plain "
           "(zennit without canonizers)"),
)
GRADIENT_SHAP_OPTIONS = (
    BASELINES, Option("n_samples", int, 20, "samples per image (default 20)"),
    Option("stdevs", float, 0.0, "input noise standard deviation, normalised units (default 0, Captum's)"),
    Option("internal_batch_size", int, 128, "gradient evaluations per pass (memory bound, default 128)"), SEED,
)


def _layer_method(name, summary, compute, extra=(), check=lambda options: None):
    return Method(name, summary, (TARGET, LAYER, *extra, *DISPLAY), compute, _attribution_saver(_layer_heat),
                  check=check, examples=f"jaxviz {name} photos/ --arch resnet18 --layer layer3 --out maps")


def _check_steps(options):
    positive("n_steps", options["n_steps"])


NEURON = Option("neuron", int, None, "the unit of --layer's output in PyTorch's order: C H W of a convolutional "
                "layer, F of a linear one (default: each image's most active unit)", many=True)


def _check_neuron(options):
    if options["neuron"] and len(options["neuron"]) not in (1, 3):
        raise InputError(f"--neuron takes C H W (a convolutional layer) or F (a linear one), got "
                         f"{len(options['neuron'])} values")


def _neuron_method(name, summary, compute, extra=(), check=lambda options: None):
    def checks(options):
        _check_neuron(options)
        check(options)

    return Method(name, summary, (LAYER, NEURON, *extra, *DISPLAY), compute, _attribution_saver(_abs_heat),
                  target="none", check=checks, examples=f"jaxviz {name} photos/ --layer features.7 --neuron 12 3 4 --out maps")


# pytorch-grad-cam's smoothing options, of every CAM and of FullGrad
EIGEN_SMOOTH = Option("eigen_smooth", bool, False, "first principal component of the maps instead of their sum")
AUG_SMOOTH = Option("aug_smooth", bool, False, "mean over the six test-time augmentations (flip × brightness)")

# CAM options that are not the function's keyword as they are (--alpha is the overlay's
# opacity; a seed is a key): option → (keyword, conversion)
def _key(seed: int):
    import jax

    return jax.random.key(seed)


CAM_KEYWORDS = {"masked_batch": ("batch_size", int), "comparison_alpha": ("alpha", float), "seed": ("key", _key)}


def _cam_computation(function, extra=()):
    """A CAM's computation: ``function`` names the jaxviz function; its common options and its
    ``extra`` ones (keywords by :data:`CAM_KEYWORDS`)."""
    public_function(function)

    def compute(model, x, target, options):
        more = {}
        for option in extra:
            keyword, convert = CAM_KEYWORDS.get(option.name, (option.name, lambda value: value))
            more[keyword] = convert(options[option.name])
        cam = getattr(jaxviz, function)
        return {"cam": cam(model, x, target, layer=tuple(options["layer"]), eigen_smooth=options["eigen_smooth"],
                           resolution=options["resolution"], aug_smooth=options["aug_smooth"], **more)}

    return compute


def _check_cam(options):
    if options["resolution"] == "layer" and (len(options["layer"] or ()) > 1 or options["aug_smooth"]):
        raise InputError("several layers and --aug-smooth give maps at the input's resolution: use --resolution input")
    positive("masked_batch", options.get("masked_batch"))
    if options.get("gamma") is not None and not 0 < options["gamma"] < float("inf"):  # KPCA-CAM
        raise InputError(f"--gamma must be a positive number, got {options['gamma']}")


def _cam_method(name, summary, function, *, resolution="input", extra=(), examples=""):
    """A pytorch-grad-cam CAM's subcommand (``function`` names the jaxviz function): its layers,
    smoothing and output convention."""
    options = (
        TARGET,
        Option("layer", str, None, "layer(s), torchvision module paths; several are averaged as pytorch-grad-cam "
               "does (default: the model's last convolutional block)", many=True, kind="layer"),
        EIGEN_SMOOTH, AUG_SMOOTH,
        Option("resolution", str, resolution, f"'layer': the map at the layer's resolution; 'input': "
               f"pytorch-grad-cam's min–max map at the input's size (default {resolution})",
               choices=choices.CAM_RESOLUTIONS),
        *extra, *DISPLAY,
    )
    return Method(name, summary, options, _cam_computation(function, extra), _attribution_saver(_cam_heat, main="cam"),
                  check=_check_cam, examples=examples or f"jaxviz {name} photos/ --out maps")


def _guided_gradcam(model, x, target, options):
    return {"attribution": jaxviz.guided_gradcam(model, x, target, layer=options["layer"],
                                                 interpolate_mode=options["interpolate_mode"], rule=options["rule"])}


def _integrated_gradients(model, x, target, options):
    attribution, delta = jaxviz.integrated_gradients(
        model, x, target, baselines=options["baseline"], n_steps=options["n_steps"], method=options["method"],
        internal_batch_size=options["internal_batch_size"], return_convergence_delta=True,
    )
    return {"attribution": attribution, "delta": delta}


def _occlusion(model, x, target, options):
    window, stride = options["window"], options["stride"]
    return {"attribution": jaxviz.occlusion(model, x, target, sliding_window_shapes=(window, window, 3),
                                            strides=(stride, stride, 3), baselines=options["baseline"],
                                            windows_per_eval=options["windows_per_eval"])}


def _smoothgrad(model, x, target, seeds, options):
    import jax.numpy as jnp

    n = options["nt_samples"]
    noise = per_image_normal(options["seed"], seeds, (n,) + tuple(x.shape[1:]), x.dtype)  # (N, n, H, W, C)
    noise = options["stdevs"] * jnp.moveaxis(noise, 1, 0)
    smoothgrad = jaxviz.smooth(jaxviz.saliency, nt_type=options["nt_type"], nt_samples=n)
    return {"attribution": smoothgrad(model, x, target, noise=noise)}


def _check_ig(options):
    positive("n_steps", options["n_steps"])
    positive("internal_batch_size", options["internal_batch_size"])


def _check_occlusion(options):
    for name in ("window", "stride", "windows_per_eval"):
        positive(name, options[name])


def _feature_mask(x, options):
    """Each image's segments (from its pixels, as scikit-image sees them) or patches."""
    if options["segments"] == "patches":
        return jaxviz.masks.patches(x.shape[1], x.shape[2], options["patch"])
    extra = {"n_segments": options["n_segments"]} if options["segments"] == "slic" else {}
    return jaxviz.masks.segments(jaxviz.deprocess(x), method=options["segments"], **extra)


def _feature_ablation(model, x, target, options):
    return {"attribution": jaxviz.feature_ablation(model, x, target, feature_mask=_feature_mask(x, options),
                                                   baselines=options["baseline"],
                                                   perturbations_per_eval=options["perturbations_per_eval"])}


def _shapley_value_sampling(model, x, target, seeds, options):
    import jax
    import jax.numpy as jnp

    mask = _feature_mask(x, options)
    n_features, n = int(np.max(mask)) + 1, options["n_samples"]
    # each image's orders from the seed and its name: uniform priorities per (sample, feature
    # id), whatever the batch and its number of features, sorted into orders
    priorities = jax.vmap(lambda key: jax.vmap(lambda s: jax.vmap(lambda f: jax.random.uniform(
        jax.random.fold_in(jax.random.fold_in(key, s), f)))(jnp.arange(n_features)))(jnp.arange(n)))(
        per_image_keys(options["seed"], seeds))
    orders = jnp.swapaxes(jnp.argsort(priorities, axis=-1), 0, 1)  # (n_samples, N, features)
    return {"attribution": jaxviz.shapley_value_sampling(
        model, x, target, feature_mask=mask, baselines=options["baseline"], n_samples=n, permutations=orders,
        perturbations_per_eval=options["perturbations_per_eval"])}


def _per_image_coalitions(sample, mask, x, seeds, options):
    """Each image's coalitions from the seed and its name, over its own features."""
    masks = np.broadcast_to(mask, x.shape[:3])
    n, keys = options["n_samples"], per_image_keys(options["seed"], seeds)
    coalitions = np.zeros((n, x.shape[0], int(np.max(mask)) + 1), np.int32)
    for i in range(x.shape[0]):
        count = int(masks[i].max()) + 1
        coalitions[:, i, :count] = np.asarray(sample(keys[i], n, [count]))[:, 0]
    return coalitions


def _coalition_method(function):
    """A coalition method's computation: ``function`` names the jaxviz function and the module
    whose ``sample_coalitions`` draws its coalitions."""
    public_function(function)

    def compute(model, x, target, seeds, options):
        mask = _feature_mask(x, options)
        sample = importlib.import_module(f"jaxviz.attribution.{function}").sample_coalitions
        coalitions = _per_image_coalitions(sample, mask, x, seeds, options)
        method = getattr(jaxviz, function)
        return {"attribution": method(model, x, target, feature_mask=mask, baselines=options["baseline"],
                                      n_samples=options["n_samples"], coalitions=coalitions,
                                      perturbations_per_eval=options["perturbations_per_eval"])}

    return compute


def _coalition_cli(name, summary, function):
    """A coalition method's subcommand (KernelShap, Lime; ``function`` names the jaxviz function):
    features, baseline, samples, seed."""
    options = (TARGET, *FEATURES, BASELINE, Option("n_samples", int, 200, "coalitions per image (default 200)"),
               PERTURBATIONS_PER_EVAL, SEED, *DISPLAY)
    return Method(name, summary, options, _coalition_method(function), _attribution_saver(_abs_heat),
                  check=_check_feature_ablation, examples=f"jaxviz {name} photos/ --n-segments 50 --n-samples 200 "
                                                          "--out maps")


def _blur_ig(model, x, target, options):
    return {"attribution": jaxviz.blur_ig(model, x, target, max_sigma=options["max_sigma"], steps=options["steps"],
                                          grad_step=options["grad_step"], sqrt=options["sqrt"],
                                          internal_batch_size=options["internal_batch_size"])}


def _check_blur_ig(options):
    for name in ("steps", "internal_batch_size", "max_sigma", "grad_step"):
        positive(name, options[name])


def _guided_ig(model, x, target, options):
    return {"attribution": jaxviz.guided_ig(model, x, target, baselines=options["baseline"], steps=options["steps"],
                                            fraction=options["fraction"], max_dist=options["max_dist"])}


def _check_guided_ig(options):
    positive("steps", options["steps"])
    for name in ("fraction", "max_dist"):
        if not 0 <= options[name] <= 1:
            raise InputError(f"--{name.replace('_', '-')} must be in [0, 1], got {options[name]}")


def _xrai(model, x, target, options):
    return {"xrai": jaxviz.xrai(model, x, target, baselines=options["baselines"], n_steps=options["n_steps"],
                                area_threshold=options["area_threshold"], min_pixel_diff=options["min_pixel_diff"],
                                internal_batch_size=options["internal_batch_size"])}


def _check_xrai(options):
    from jaxviz import _checks

    for name in ("n_steps", "min_pixel_diff", "internal_batch_size"):
        positive(name, options[name])
    _checks.check_fraction(options["area_threshold"], "area_threshold")


def _fullgrad(model, x, target, options):
    return {"cam": jaxviz.fullgrad(model, x, target, eigen_smooth=options["eigen_smooth"],
                                   aug_smooth=options["aug_smooth"])}


def _rise(model, x, target, options):
    # one mask set for every image (RISE's), from the seed alone: no image depends on its batch
    return {"saliency": jaxviz.rise(model, x, target, n_masks=options["n_masks"], cells=options["cells"],
                                    p=options["p"], key=_key(options["seed"]),
                                    masks_per_eval=options["masks_per_eval"])}


def _check_rise(options):
    from jaxviz import _checks

    for name in ("n_masks", "cells", "masks_per_eval"):
        positive(name, options[name])
    _checks.check_fraction(options["p"], "p")


def _check_feature_ablation(options):
    for name in ("n_segments", "patch", "perturbations_per_eval", "n_samples"):
        if name in options:
            positive(name, options[name])


def _check_gradient_shap(options):
    positive("n_samples", options["n_samples"])
    positive("stdevs", options["stdevs"], minimum=0)
    positive("internal_batch_size", options["internal_batch_size"])


def _check_smoothgrad(options):
    positive("nt_samples", options["nt_samples"])
    positive("stdevs", options["stdevs"], minimum=0)


DECLARED = (
    Method(
        "saliency", "vanilla gradient saliency (Simonyan et al.; Captum Saliency, abs)",
        (TARGET, *DISPLAY), _saliency, _attribution_saver(_abs_heat),
        examples="jaxviz saliency photos/ --out maps\n"
                 "jaxviz saliency imagenet_val_25.npz --out maps       # targets from the .npz's y",
    ),
    Method(
        "guided-backprop", "guided backpropagation (Springenberg et al.; Captum GuidedBackprop)",
        (TARGET, RULE, *DISPLAY), _guided_backprop, _attribution_saver(_abs_heat),
        examples="jaxviz guided-backprop cat.jpg --target 281 --out maps",
    ),
    Method(
        "input-x-gradient", "input × gradient (Shrikumar et al.; Captum InputXGradient)",
        (TARGET, *DISPLAY), _input_x_gradient, _attribution_saver(_abs_heat),
        examples="jaxviz input-x-gradient photos/ --out maps",
    ),
    Method(
        "deconvolution", "deconvolution: ReLUs pass max(gradient, 0) back (Zeiler & Fergus; Captum Deconvolution)",
        (TARGET, RULE, *DISPLAY), _deconvolution, _attribution_saver(_abs_heat),
        examples="jaxviz deconvolution photos/ --arch vgg16 --out maps",
    ),
    Method(
        "deeplift", "DeepLift, rescale rule (Shrikumar et al.; Captum DeepLift)",
        (TARGET, BASELINE, RULE, *DISPLAY), _deeplift, _attribution_saver(_abs_heat),
        examples="jaxviz deeplift photos/ --arch resnet18 --out maps",
    ),
    Method(
        "lrp", "layer-wise relevance propagation with zennit's composites (Bach et al.; zennit)",
        (TARGET, *LRP_OPTIONS, *DISPLAY),
        _lrp, _attribution_saver(_abs_heat),
        examples="jaxviz lrp photos/ --arch vgg16_bn --composite epsilon_gamma_box --out maps",
    ),
    _neuron_method("neuron-gradient", "input gradient of one unit of a layer (Captum NeuronGradient)",
                   _neuron_computation("neuron_gradient")),
    _neuron_method("neuron-guided-backprop", "guided backprop from one unit of a layer (Captum NeuronGuidedBackprop)",
                   _neuron_computation("neuron_guided_backprop", rule="rule"), (RULE,)),
    _neuron_method("neuron-deconvolution", "deconvolution from one unit of a layer (Captum NeuronDeconvolution)",
                   _neuron_computation("neuron_deconvolution", rule="rule"), (RULE,)),
    _neuron_method("neuron-integrated-gradients", "Integrated Gradients of one unit of a layer (Captum "
                   "NeuronIntegratedGradients)", _neuron_computation("neuron_integrated_gradients",
                                                                     n_steps="n_steps", baselines="baseline"),
                   (N_STEPS, BASELINE), _check_steps),
    _neuron_method("neuron-deeplift", "DeepLift of one unit of a layer (Captum NeuronDeepLift)",
                   _neuron_computation("neuron_deeplift", baselines="baseline", rule="rule"), (BASELINE, RULE)),
    _neuron_method("neuron-gradient-shap", "GradientShap of one unit of a layer (Captum NeuronGradientShap)",
                   _neuron_gradient_shap,
                   GRADIENT_SHAP_OPTIONS, _check_gradient_shap),
    _layer_method("layer-gradient-x-activation", "a layer's activation × gradient (Captum LayerGradientXActivation)",
                  _layer_computation("layer_gradient_x_activation")),
    _layer_method("internal-influence", "layer gradients integrated along the input path (Leino et al.; Captum "
                  "InternalInfluence)", _layer_computation("internal_influence", n_steps="n_steps",
                                                           baselines="baseline"),
                  (N_STEPS, BASELINE), _check_steps),
    _layer_method("layer-integrated-gradients", "Integrated Gradients in a layer's output (Captum "
                  "LayerIntegratedGradients)", _layer_computation("layer_integrated_gradients",
                                                                  n_steps="n_steps", baselines="baseline"),
                  (N_STEPS, BASELINE), _check_steps),
    _layer_method("layer-deeplift", "DeepLift at a layer (Captum LayerDeepLift)",
                  _layer_computation("layer_deeplift", baselines="baseline", rule="rule"), (BASELINE, RULE)),
    _layer_method("layer-gradient-shap", "GradientShap at a layer (Captum LayerGradientShap)", _layer_gradient_shap,
                  GRADIENT_SHAP_OPTIONS, _check_gradient_shap),
    _layer_method("layer-lrp", "the relevance LRP sends to a layer's output (Captum LayerLRP)", _layer_lrp,
                  LRP_OPTIONS),
    _layer_method("layer-feature-ablation", "a layer's channels (or units) set to a baseline one at a time (Captum "
                  "LayerFeatureAblation)", _layer_feature_ablation,
                  (Option("ablate", str, "channels", "what is ablated together: each channel, or each unit alone "
                          "(one forward pass per unit; default channels)", choices=("channels", "units")),
                   BASELINE, PERTURBATIONS_PER_EVAL),
                  lambda options: positive("perturbations_per_eval", options["perturbations_per_eval"])),
    Method("neuron-conductance", "the target's flow through one unit of a layer (Dhamdhere et al.; Captum "
           "NeuronConductance)", (TARGET, LAYER, NEURON, N_STEPS, BASELINE, *DISPLAY), _neuron_conductance,
           _attribution_saver(_abs_heat), check=lambda options: (_check_neuron(options), _check_steps(options)),
           examples="jaxviz neuron-conductance photos/ --layer features.7 --neuron 12 3 4 --out maps"),
    _layer_method("layer-conductance", "conductance of a layer's units (Dhamdhere et al.; Captum LayerConductance)",
                  _layer_computation("layer_conductance", n_steps="n_steps", baselines="baseline"),
                  (N_STEPS, BASELINE), _check_steps),
    Method(
        "deeplift-shap", "DeepLiftShap: DeepLift averaged over a baseline distribution (Captum DeepLiftShap)",
        (TARGET, BASELINES, RULE, *DISPLAY), _deeplift_shap, _attribution_saver(_abs_heat),
        examples="jaxviz deeplift-shap photos/ --baselines -1.5 0 1.5 --out maps",
    ),
    Method(
        "gradient-shap", "GradientShap: input × gradient at random points towards random baselines (Lundberg & "
        "Lee; Captum GradientShap)",
        (TARGET, *GRADIENT_SHAP_OPTIONS, *DISPLAY),
        _gradient_shap, _attribution_saver(_abs_heat), check=_check_gradient_shap,
        examples="jaxviz gradient-shap photos/ --n-samples 50 --stdevs 0.1 --seed 1 --out maps",
    ),
    _cam_method(
        "gradcam", "GradCAM at a layer, ReLU'd (Selvaraju et al.; the course's GradCAM; pytorch-grad-cam GradCAM)",
        "gradcam", resolution="layer",
        examples="jaxviz gradcam photos/ --labels labels.tsv --out maps\n"
                 "jaxviz gradcam photos/ --layer features.9 --out maps-f9\n"
                 "jaxviz gradcam photos/ --layer layer3 layer4 --resolution input --arch resnet50 --out maps",
    ),
    _cam_method("hirescam", "HiResCAM: gradient ⊙ activation summed over channels (Draelos & Carin)",
                "hirescam"),
    _cam_method("gradcam-elementwise", "GradCAM element-wise: ReLU(gradient ⊙ activation) summed (pytorch-grad-cam)",
                "gradcam_elementwise"),
    _cam_method("gradcam-plus-plus", "GradCAM++ (Chattopadhay et al.; pytorch-grad-cam GradCAMPlusPlus)",
                "gradcam_plus_plus"),
    _cam_method("xgradcam", "XGradCAM (Fu et al.; pytorch-grad-cam XGradCAM)", "xgradcam"),
    _cam_method("layercam", "LayerCAM: ReLU(gradient) ⊙ activation (Jiang et al.; pytorch-grad-cam LayerCAM)",
                "layercam"),
    _cam_method("eigencam", "EigenCAM: first principal component of the activations (Muhammad & Yeasin)",
                "eigencam"),
    _cam_method("eigen-gradcam", "EigenGradCAM: first principal component of gradient ⊙ activation",
                "eigen_gradcam"),
    _cam_method("scorecam", "ScoreCAM: channels weighted by the masked input's score (Wang et al.)",
                "scorecam",
                extra=(Option("masked_batch", int, 16, "masked images per forward pass (memory bound, default 16)"),),
                examples="jaxviz scorecam photos/ --arch resnet50 --out maps"),
    _cam_method("ablationcam", "AblationCAM: channels weighted by the score drop when ablated (Desai & Ramaswamy)",
                "ablationcam",
                extra=(Option("masked_batch", int, 32, "ablated images per forward pass (memory bound, default 32)"),),
                examples="jaxviz ablationcam photos/ --arch resnet50 --out maps"),
    _cam_method("kpca-cam", "KPCA-CAM: first kernel principal component of the activations (Karmani et al.; "
                "pytorch-grad-cam KPCA_CAM)", "kpca_cam",
                extra=(Option("kernel", str, "sigmoid", "kernel of the kernel PCA (default sigmoid)",
                              choices=choices.KPCA_KERNELS),
                       Option("gamma", float, None, "the kernel's scale (default 1 / channels)")),
                examples="jaxviz kpca-cam photos/ --kernel rbf --arch resnet50 --out maps"),
    _cam_method("shapleycam", "ShapleyCAM: gradient and Hessian-vector product weights (Cai & Xu; pytorch-grad-cam "
                "ShapleyCAM)", "shapleycam",
                extra=(Option("score", str, "logit", "what is differentiated: the target's logit, or 'rest', logit + "
                              "log-probability (the paper's; default logit)", choices=choices.SHAPLEYCAM_SCORES),),
                examples="jaxviz shapleycam photos/ --score rest --arch resnet50 --out maps"),
    _cam_method("finercam", "FinerCAM: GradCAM of the target against its most similar classes (Zhang et al.; "
                "pytorch-grad-cam FinerCAM)", "finercam",
                extra=(Option("comparison_alpha", float, 1.0, "FinerCAM's α: how much of the similar classes' logits "
                              "is subtracted (default 1)"),
                       Option("comparison_categories", int, (1, 2, 3), "ranks of the similar classes by logit distance "
                              "(default 1 2 3)", many=True)),
                examples="jaxviz finercam photos/ --comparison-alpha 0.6 --comparison-categories 1 2 --out maps"),
    _cam_method("random-cam", "RandomCAM: channels weighted uniformly at random in [-1, 1), a baseline for the "
                "metrics (pytorch-grad-cam RandomCAM)", "random_cam",
                extra=(Option("seed", int, 0, "random seed of the weights (drawn for each batch; default 0)"),),
                examples="jaxviz random-cam photos/ --seed 3 --out baseline"),
    Method("sobel-cam", "the Sobel edge map of each image, a baseline for the metrics (pytorch-grad-cam sobel_cam)",
           (TARGET, *DISPLAY), lambda model, x, target, options: {"cam": jaxviz.sobel_cam(model, x, target)},
           _attribution_saver(_cam_heat, main="cam"), examples="jaxviz sobel-cam photos/ --out edges"),
    Method(
        "fullgrad", "FullGrad: input-gradient and every bias-gradient map, summed (Srinivas & Fleuret; "
        "pytorch-grad-cam FullGrad)",
        (TARGET, EIGEN_SMOOTH, AUG_SMOOTH, *DISPLAY),
        _fullgrad, _attribution_saver(_cam_heat, main="cam"),
        examples="jaxviz fullgrad photos/ --arch resnet50 --out maps",
    ),
    Method(
        "rise", "RISE: the class probability under random smooth masks (Petsiuk et al.)",
        (TARGET, Option("n_masks", int, 4000, "random masks (default 4000, the paper's for ResNet-50)"),
         Option("cells", int, 7, "grid cells per side of a mask (default 7)"),
         Option("p", float, 0.5, "probability that a cell is kept (default 0.5)"),
         Option("masks_per_eval", int, 16, "masks per forward pass (memory bound, default 16)"),
         Option("seed", int, 0, "random seed of the masks (one set for every image, as in RISE)"), *DISPLAY),
        _rise, _attribution_saver(_cam_heat, main="saliency"), check=_check_rise,
        examples="jaxviz rise photos/ --n-masks 2000 --out maps",
    ),
    Method(
        "feature-ablation", "feature ablation over superpixels or patches (Captum FeatureAblation)",
        (TARGET, *FEATURES, BASELINE, PERTURBATIONS_PER_EVAL, *DISPLAY),
        _feature_ablation, _attribution_saver(_abs_heat), check=_check_feature_ablation,
        examples="jaxviz feature-ablation photos/ --n-segments 100 --out maps\n"
                 "jaxviz feature-ablation photos/ --segments patches --patch 32 --out maps",
    ),
    Method(
        "shapley-value-sampling", "Shapley value sampling over superpixels or patches (Captum ShapleyValueSampling)",
        (TARGET, *FEATURES, BASELINE, Option("n_samples", int, 25, "random feature orders per image (default 25)"),
         PERTURBATIONS_PER_EVAL, SEED, *DISPLAY),
        _shapley_value_sampling, _attribution_saver(_abs_heat), check=_check_feature_ablation,
        examples="jaxviz shapley-value-sampling photos/ --n-segments 30 --n-samples 50 --out maps",
    ),
    _coalition_cli("kernel-shap", "KernelShap over superpixels or patches (Lundberg & Lee; Captum KernelShap)",
                   "kernel_shap"),
    _coalition_cli("lime", "Lime over superpixels or patches: a Lasso model of coalitions (Ribeiro et al.; "
                   "Captum Lime)", "lime"),
    Method(
        "guided-gradcam", "guided GradCAM: guided backprop × upsampled GradCAM (Captum GuidedGradCam)",
        (TARGET, LAYER, Option("interpolate_mode", str, "nearest", "GradCAM upsampling (default nearest, Captum's)",
                               choices=choices.INTERPOLATE_MODES), RULE, *DISPLAY),
        _guided_gradcam, _attribution_saver(_abs_heat),
        examples="jaxviz guided-gradcam photos/ --out maps --batch-size 16",
    ),
    Method(
        "integrated-gradients", "Integrated Gradients (Sundararajan et al.; Captum IntegratedGradients)",
        (TARGET, Option("n_steps", int, 50, "quadrature points (default 50)"),
         Option("method", str, "gausslegendre", "quadrature (default gausslegendre)", choices=choices.QUADRATURE_METHODS),
         BASELINE,
         Option("internal_batch_size", int, 128, "path points evaluated per pass (memory bound, default 128)"),
         *DISPLAY),
        _integrated_gradients, _attribution_saver(_abs_heat), check=_check_ig,
        examples="jaxviz integrated-gradients cat.jpg --n-steps 32 --out maps",
    ),
    Method(
        "blur-ig", "Blur IG: integrated gradients along a Gaussian-blur path (Xu et al.; PAIR saliency BlurIG)",
        (TARGET, Option("max_sigma", float, 50.0, "the path's largest blur, pixels (default 50)"),
         Option("steps", int, 100, "gradient evaluations along the path (default 100)"),
         Option("grad_step", float, 0.01, "σ step of the blur's derivative (default 0.01)"),
         Option("sqrt", bool, False, "square-root spacing of σ"),
         Option("internal_batch_size", int, 128, "path points evaluated per pass (memory bound, default 128)"),
         *DISPLAY),
        _blur_ig, _attribution_saver(_abs_heat), check=_check_blur_ig,
        examples="jaxviz blur-ig photos/ --steps 50 --out maps",
    ),
    Method(
        "guided-ig", "Guided IG: an adaptive path, small-gradient features first (Kapishnikov et al.; PAIR saliency "
        "GuidedIG)",
        (TARGET, Option("steps", int, 200, "gradient evaluations along the path (default 200)"),
         Option("fraction", float, 0.25, "share of the features moved at a time (default 0.25)"),
         Option("max_dist", float, 0.02, "how far a feature may stray from the straight line, in α (default 0.02)"),
         BASELINE, *DISPLAY),
        _guided_ig, _attribution_saver(_abs_heat), check=_check_guided_ig,
        examples="jaxviz guided-ig photos/ --steps 100 --out maps",
    ),
    Method(
        "xrai", "XRAI: Felzenszwalb regions ranked by their density of integrated gradients (Kapishnikov et al.; "
        "PAIR saliency XRAI)",
        (TARGET, Option("n_steps", int, 100, "IG points per baseline (default 100)"),
         Option("baselines", float, None, "IG baselines: constant images at these values, normalised units "
                "(default: each image's minimum and its maximum, PAIR's)", many=True),
         Option("area_threshold", float, 1.0, "stop once this fraction of the image is covered (default 1)"),
         Option("min_pixel_diff", int, 50, "drop regions adding fewer new pixels (default 50)"),
         Option("internal_batch_size", int, 128, "path points evaluated per pass (memory bound, default 128)"),
         *DISPLAY),
        _xrai, _attribution_saver(_cam_heat, main="xrai"), check=_check_xrai,
        examples="jaxviz xrai photos/ --n-steps 50 --out maps",
    ),
    Method(
        "occlusion", "occlusion with a sliding square window (Zeiler & Fergus; Captum Occlusion)",
        (TARGET, Option("window", int, 15, "window side in pixels (default 15)"),
         Option("stride", int, 8, "window stride in pixels (default 8)"),
         Option("baseline", float, 0.0, "value the window is set to, normalised units (default 0)"),
         Option("windows_per_eval", int, 64, "windows per forward pass (memory bound, default 64)"),
         *DISPLAY),
        _occlusion, _attribution_saver(_abs_heat), check=_check_occlusion,
        examples="jaxviz occlusion cat.jpg --window 30 --stride 15 --out maps",
    ),
    Method(
        "smoothgrad", "SmoothGrad: saliency averaged over noisy copies (Smilkov et al.; Captum NoiseTunnel)",
        (TARGET, Option("nt_samples", int, 25, "noisy samples per image (default 25)"),
         Option("stdevs", float, 0.15, "noise standard deviation, normalised units (default 0.15)"),
         Option("nt_type", str, "smoothgrad", "aggregate (default smoothgrad)", choices=choices.NT_TYPES),
         SEED, *DISPLAY),
        _smoothgrad, _attribution_saver(_abs_heat), check=_check_smoothgrad,
        examples="jaxviz smoothgrad photos/ --nt-samples 50 --seed 1 --out maps",
    ),
)
