"""make test compiles most tests with LLVM at -O0 (the Makefile says why); users get XLA's
default settings.  Both compile the same XLA program: -O0 only changes how LLVM turns its
kernels into machine code, so results differ by float32 rounding alone.  This test holds
that to 1e-6 of the largest value (the float32 attribution criterion is 1e-4), at 224
with the pretrained SqueezeNet, on DeepLift's, LRP's and IG's programs (they moved, by up
to 2.3e-7) and guided backprop's (it did not), and runs at the default settings itself
(``runs_long``)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import jaxviz
from parity_tests import helpers as h

pytestmark = pytest.mark.runs_long

PROGRAMS = {
    "guided_backprop": jaxviz.guided_backprop,
    "deeplift": lambda m, x, t: jaxviz.deeplift(m, x, t, baselines=0.1),
    "lrp": jaxviz.lrp,
    "integrated_gradients": lambda m, x, t: jaxviz.integrated_gradients(m, x, t, n_steps=4),
}


@pytest.mark.parametrize("name", list(PROGRAMS))
def test_float32_results_at_o0_equal_the_default_settings_to_rounding(name):
    model, _, x, target = h.setup("pretrained", "float32")
    lowered = jax.jit(PROGRAMS[name]).lower(model, x, target)
    default = np.asarray(lowered.compile()(model, x, target))
    o0 = np.asarray(lowered.compile(compiler_options={"xla_backend_optimization_level": 0})(model, x, target))
    difference = np.abs(default - o0).max() / np.abs(default).max()
    print(f"{name}: {difference:.2e}")
    assert difference <= 1e-6, name
