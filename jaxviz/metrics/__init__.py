"""Does a map mean anything?  Metrics of attributions, each compiled and batched.

Faithfulness: :func:`deletion`, :func:`insertion` (RISE), :func:`infidelity` (Captum).
Robustness: :func:`sensitivity_max` (Captum).  Randomisation: :func:`mprt` (Adebayo et al.).  Complexity and axioms: :func:`sparseness`,
:func:`complexity`, :func:`completeness` (Quantus).

Metrics of given attributions take ``(model, x, target, attributions, *, options)``;
those that explain again take ``(model, x, target, method, *, options)``; those of the
map alone take ``(attributions, *, options)``.
"""

from jaxviz.metrics import similarity
from jaxviz.metrics._causal import CausalCurve
from jaxviz.metrics.completeness import completeness
from jaxviz.metrics.complexity import complexity
from jaxviz.metrics.deletion import deletion
from jaxviz.metrics.infidelity import infidelity
from jaxviz.metrics.insertion import insertion
from jaxviz.metrics.mprt import MPRTResult, mprt
from jaxviz.metrics.sensitivity_max import sensitivity_max
from jaxviz.metrics.sparseness import sparseness

__all__ = [
    "CausalCurve",
    "completeness",
    "complexity",
    "deletion",
    "infidelity",
    "insertion",
    "MPRTResult",
    "mprt",
    "sensitivity_max",
    "similarity",
    "sparseness",
]
