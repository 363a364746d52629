"""Driving Google PAIR's ``saliency`` (0.2.1) with a PyTorch model: the parity tests and the
benchmarks call it the same way."""

from __future__ import annotations

import contextlib
import types
from unittest import mock

import numpy as np
import torch


def call_model(tm, target, dtype=None):
    """PAIR's ``call_model_function``: the input gradients of ``target``'s logit for a batch
    of HWC images (in ``dtype``, default the batch's), HWC."""
    from saliency.core import INPUT_OUTPUT_GRADIENTS

    def call(batch, call_model_args=None, expected_keys=None):
        batch = np.asarray(batch, dtype)
        xt = torch.from_numpy(np.ascontiguousarray(batch.transpose(0, 3, 1, 2))).requires_grad_(True)
        tm(xt)[:, int(target)].sum().backward()
        return {INPUT_OUTPUT_GRADIENTS: xt.grad.numpy().transpose(0, 2, 3, 1)}

    return call


def masks(method, tm, x, target, *, dtype=None, **options):
    """``method.GetMask`` of each image (PAIR explains one at a time), stacked; the model
    is given ``dtype`` (PAIR's Guided IG walks its path in float64)."""
    return np.stack([method.GetMask(image, call_model(tm, t, dtype), **options) for image, t in zip(x, target)])


@contextlib.contextmanager
def quantile_interpolation():
    """PAIR's Guided IG calls ``np.quantile(..., interpolation=...)``, the keyword NumPy 2
    renamed ``method`` (same meaning) and then removed: while this is open, that module's
    own ``np`` takes it (nothing else changes)."""
    def quantile(a, q, interpolation="linear", **kwargs):
        return np.quantile(a, q, method=interpolation, **kwargs)

    shim = types.SimpleNamespace(**{**{name: getattr(np, name) for name in dir(np) if not name.startswith("__")},
                                    "quantile": quantile})
    with mock.patch("saliency.core.guided_ig.np", shim):
        yield
