"""Does a map mean anything?  Metrics of attributions, each compiled and batched.

Faithfulness: :func:`deletion`, :func:`insertion` (RISE), :func:`infidelity` (Captum),
:func:`road`, :func:`drop_in_confidence`, :func:`increase_in_confidence` (pytorch-grad-cam),
:func:`pixel_flipping`, :func:`region_perturbation`, :func:`faithfulness_correlation`,
:func:`monotonicity_correlation` (Quantus).
Robustness: :func:`sensitivity_max` (Captum), :func:`avg_sensitivity`,
:func:`local_lipschitz_estimate` (Quantus).  Randomisation: :func:`mprt` (Adebayo et
al.), :func:`random_logit` (Quantus).  Complexity and axioms: :func:`sparseness`,
:func:`complexity`, :func:`completeness` (Quantus).

Metrics of given attributions take ``(model, x, target, attributions, *, options)``;
those that explain again take ``(model, x, target, method, *, options)``; those of the
map alone take ``(attributions, *, options)``.
"""

from jaxviz.metrics import similarity
from jaxviz.metrics._causal import CausalCurve
from jaxviz.metrics.avg_sensitivity import avg_sensitivity
from jaxviz.metrics.completeness import completeness
from jaxviz.metrics.complexity import complexity
from jaxviz.metrics.deletion import deletion
from jaxviz.metrics.drop_in_confidence import drop_in_confidence
from jaxviz.metrics.faithfulness_correlation import faithfulness_correlation
from jaxviz.metrics.increase_in_confidence import increase_in_confidence
from jaxviz.metrics.infidelity import infidelity
from jaxviz.metrics.insertion import insertion
from jaxviz.metrics.local_lipschitz_estimate import local_lipschitz_estimate
from jaxviz.metrics.monotonicity_correlation import monotonicity_correlation
from jaxviz.metrics.mprt import MPRTResult, mprt
from jaxviz.metrics.pixel_flipping import pixel_flipping
from jaxviz.metrics.random_logit import random_logit
from jaxviz.metrics.region_perturbation import region_perturbation
from jaxviz.metrics.road import ROADScores, road
from jaxviz.metrics.sensitivity_max import sensitivity_max
from jaxviz.metrics.sparseness import sparseness

__all__ = [
    "CausalCurve",
    "avg_sensitivity",
    "completeness",
    "complexity",
    "deletion",
    "drop_in_confidence",
    "faithfulness_correlation",
    "infidelity",
    "increase_in_confidence",
    "insertion",
    "local_lipschitz_estimate",
    "MPRTResult",
    "monotonicity_correlation",
    "mprt",
    "pixel_flipping",
    "random_logit",
    "region_perturbation",
    "road",
    "ROADScores",
    "sensitivity_max",
    "similarity",
    "sparseness",
]
