"""Attribution methods, one per module, one signature: ``method(model, x, target, *, options)``."""

from jaxviz.attribution._paths import METHODS as QUADRATURE_METHODS
from jaxviz.attribution.ablationcam import ablationcam
from jaxviz.attribution.blur_ig import blur_ig
from jaxviz.attribution.course import saliency_map
from jaxviz.attribution.deconvolution import deconvolution
from jaxviz.attribution.deeplift import deeplift
from jaxviz.attribution.deeplift_shap import deeplift_shap
from jaxviz.attribution.eigen_gradcam import eigen_gradcam
from jaxviz.attribution.eigencam import eigencam
from jaxviz.attribution.feature_ablation import feature_ablation
from jaxviz.attribution.finercam import finercam
from jaxviz.attribution.fullgrad import fullgrad
from jaxviz.attribution.gradcam import gradcam, guided_gradcam, layer_gradcam
from jaxviz.attribution.gradcam_elementwise import gradcam_elementwise
from jaxviz.attribution.gradcam_plus_plus import gradcam_plus_plus
from jaxviz.attribution.gradient_shap import gradient_shap
from jaxviz.attribution.guided_backprop import guided_backprop
from jaxviz.attribution.guided_ig import guided_ig
from jaxviz.attribution.integrated_gradients import integrated_gradients
from jaxviz.attribution.hirescam import hirescam
from jaxviz.attribution.input_x_gradient import input_x_gradient
from jaxviz.attribution.kernel_shap import kernel_shap
from jaxviz.attribution.kpca_cam import kpca_cam
from jaxviz.attribution.internal_influence import internal_influence
from jaxviz.attribution.layer_feature_ablation import layer_feature_ablation
from jaxviz.attribution.layer_gradient_shap import layer_gradient_shap
from jaxviz.attribution.layer_gradient_x_activation import layer_gradient_x_activation
from jaxviz.attribution.layer_integrated_gradients import layer_integrated_gradients
from jaxviz.attribution.layer_conductance import layer_conductance
from jaxviz.attribution.layer_deeplift import layer_deeplift
from jaxviz.attribution.layer_lrp import layer_lrp
from jaxviz.attribution.layercam import layercam
from jaxviz.attribution.lime import lime
from jaxviz.attribution.lrp import lrp
from jaxviz.attribution.neuron_conductance import neuron_conductance
from jaxviz.attribution.neuron_deconvolution import neuron_deconvolution
from jaxviz.attribution.neuron_deeplift import neuron_deeplift
from jaxviz.attribution.neuron_gradient import neuron_gradient
from jaxviz.attribution.neuron_gradient_shap import neuron_gradient_shap
from jaxviz.attribution.neuron_guided_backprop import neuron_guided_backprop
from jaxviz.attribution.neuron_integrated_gradients import neuron_integrated_gradients
from jaxviz.attribution.occlusion import occlusion
from jaxviz.attribution.random_cam import random_cam
from jaxviz.attribution.rise import rise
from jaxviz.attribution.saliency import saliency
from jaxviz.attribution.scorecam import scorecam
from jaxviz.attribution.shapleycam import shapleycam
from jaxviz.attribution.shapley_value_sampling import shapley_value_sampling
from jaxviz.attribution.sobel_cam import sobel_cam
from jaxviz.attribution.smooth import NT_TYPES, noise_tunnel, smooth
from jaxviz.attribution.xgradcam import xgradcam
from jaxviz.attribution.xrai import xrai

# ``smooth`` wraps a method rather than being one; ``noise_tunnel`` is its deprecated form.
__all__ = [
    "NT_TYPES",
    "QUADRATURE_METHODS",
    "ablationcam",
    "blur_ig",
    "deconvolution",
    "deeplift",
    "deeplift_shap",
    "eigen_gradcam",
    "eigencam",
    "feature_ablation",
    "finercam",
    "fullgrad",
    "gradcam",
    "gradcam_elementwise",
    "gradcam_plus_plus",
    "gradient_shap",
    "guided_backprop",
    "guided_gradcam",
    "guided_ig",
    "hirescam",
    "input_x_gradient",
    "integrated_gradients",
    "kernel_shap",
    "kpca_cam",
    "internal_influence",
    "layer_feature_ablation",
    "layer_gradient_shap",
    "layer_gradient_x_activation",
    "layer_integrated_gradients",
    "layer_conductance",
    "layer_deeplift",
    "layer_lrp",
    "layer_gradcam",
    "layercam",
    "lime",
    "lrp",
    "noise_tunnel",
    "neuron_conductance",
    "neuron_deconvolution",
    "neuron_deeplift",
    "neuron_gradient",
    "neuron_gradient_shap",
    "neuron_guided_backprop",
    "neuron_integrated_gradients",
    "occlusion",
    "saliency",
    "saliency_map",
    "random_cam",
    "rise",
    "scorecam",
    "shapleycam",
    "shapley_value_sampling",
    "smooth",
    "sobel_cam",
    "xgradcam",
    "xrai",
]
