"""Does an image's float32 input gradient depend on the batch it is in?  Run once with
XLA's defaults and once with XLA_FLAGS=--xla_cpu_experimental_ynn_fusion_type=."""

import os

import jax
import numpy as np

import jaxviz
from benchmarks import run as harness

model = jaxviz.load_model(weights=os.environ["JAXVIZ_WEIGHTS"])
course, labels = harness.course_images(5)
x = jaxviz.preprocess(course)
whole = np.asarray(jaxviz.saliency(model, x, labels, absolute=False))
for size in (1, 2, 3):
    part = np.asarray(jaxviz.saliency(model, x[:size], labels[:size], absolute=False))
    print(f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}: images 0..{size - 1} alone against in the batch of 5: "
          f"largest difference {np.abs(part - whole[:size]).max():.2e} (largest value {np.abs(whole).max():.2f})")
