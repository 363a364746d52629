"""The values jaxviz's named options take, and the style presets: what the functions check
their arguments against and what the command line offers.  Plain Python, so that
``jaxviz --help`` is answered before jax is imported; the modules that implement each
option import its values from here."""

# torchvision's architectures, by the family module that builds them (jaxviz.models.families)
FAMILIES = {
    "squeezenet": ("squeezenet1_0", "squeezenet1_1"),
    "resnet": ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152", "resnext50_32x4d", "wide_resnet50_2"),
    "vgg": ("vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "alexnet"),
    "mobilenet": ("mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large"),
    "densenet": ("densenet121", "densenet161", "densenet169", "densenet201"),
    "googlenet": ("googlenet",),
}
ARCHITECTURES = tuple(arch for archs in FAMILIES.values() for arch in archs)

# which activations a backward rule (guided, deconvolution, DeepLift) reaches: the ``nn.ReLU``
# modules (Captum's hooks) or all
GUIDED_RULES = ("modules", "all")
# Integrated Gradients' quadratures (Captum's names)
QUADRATURE_METHODS = ("gausslegendre", "riemann_left", "riemann_right", "riemann_middle", "riemann_trapezoid")
# NoiseTunnel's aggregates
NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")
# a CAM at its layer's resolution, or pytorch-grad-cam's min–max map at the input's
CAM_RESOLUTIONS = ("layer", "input")
KPCA_KERNELS = ("sigmoid", "rbf", "poly", "linear", "cosine")
# what ShapleyCAM differentiates
SHAPLEYCAM_SCORES = ("logit", "rest")
INTERPOLATE_MODES = ("nearest", "bilinear", "bicubic")
# scikit-image's superpixels
SEGMENTATIONS = ("slic", "quickshift", "felzenszwalb")
# LRP's composites: zennit's, and Captum's default rules
LRP_COMPOSITES = ("epsilon_plus", "epsilon_plus_flat", "epsilon_gamma_box", "epsilon_alpha2_beta1",
                  "epsilon_alpha2_beta1_flat", "captum")
# the fooling images' perturbation budgets
FOOLING_NORMS = ("linf", "l2")
ROAD_PERCENTILES = (10, 20, 30, 40, 50, 60, 70, 80, 90)

# style transfer: content tubingen.jpg at 192, content layer 3, style layers (1, 4, 6, 7)
STYLE_PRESETS = {
    "composition_vii": dict(style="composition_vii.jpg", style_size=512, content_weight=5e-2,
                            style_weights=(20000, 500, 12, 1), tv_weight=5e-2),
    "the_scream": dict(style="the_scream.jpg", style_size=224, content_weight=3e-2,
                       style_weights=(200000, 800, 12, 1), tv_weight=2e-2),
    "starry_night": dict(style="starry_night.jpg", style_size=192, content_weight=6e-2,
                         style_weights=(300000, 1000, 15, 3), tv_weight=2e-2),
}
STYLE_CONTENT_IMAGE, STYLE_IMAGE_SIZE = "tubingen.jpg", 192
