"""KPCA-CAM (pytorch-grad-cam ``KPCA_CAM``): EigenCAM with kernel PCA, the layer's centred
activations projected on the first component of a kernel (scikit-learn's ``KernelPCA``)."""

from __future__ import annotations

from collections.abc import Sequence

import jax
import jax.numpy as jnp

from jaxviz import _checks
from jaxviz.attribution import _cam
from jaxviz.choices import KPCA_KERNELS as KERNELS
from jaxviz.errors import InputError

COEF0, DEGREE = 1.0, 3  # KernelPCA's defaults, which the package keeps


def kernel_matrix(points, kernel: str, gamma: float):
    """(N, P, C) → (N, P, P): scikit-learn's pairwise kernel of each image's P points."""
    gram = jnp.einsum("npc,nqc->npq", points, points)
    if kernel == "linear":
        return gram
    if kernel == "sigmoid":
        return jnp.tanh(gamma * gram + COEF0)
    if kernel == "poly":
        return (gamma * gram + COEF0) ** DEGREE
    squares = jnp.einsum("npp->np", gram)
    if kernel == "rbf":
        distances = jnp.maximum(squares[:, :, None] + squares[:, None, :] - 2 * gram, 0)
        return jnp.exp(-gamma * distances)
    norms = jnp.sqrt(squares)  # cosine; a zero row stays zero, as sklearn's normalize leaves it
    unit = jnp.where(norms > 0, 1 / jnp.where(norms > 0, norms, 1), 0)
    return gram * unit[:, :, None] * unit[:, None, :]


def first_component(matrix):
    """(N, P, P) kernel matrices → (N, P): ``KernelPCA(n_components=1).fit_transform``: the
    centred matrix's top eigenvector, its largest-magnitude entry made positive, times the
    square root of its eigenvalue (0 where that is not positive)."""
    rows = matrix.mean(axis=1, keepdims=True)
    centred = matrix - rows - matrix.mean(axis=2, keepdims=True) + rows.mean(axis=2, keepdims=True)
    value, vector = jax.lax.map(_top_eigenpair, centred)
    biggest = jnp.take_along_axis(vector, jnp.argmax(jnp.abs(vector), axis=1)[:, None], axis=1)
    return vector * jnp.sign(biggest) * jnp.sqrt(jnp.maximum(value, 0))[:, None]


def _top_eigenpair(matrix):
    """One symmetric matrix's largest eigenvalue and its eigenvector.  One matrix per LAPACK
    call (``lax.map``): jaxlib spreads a batch over XLA's thread pool and blocks a pool thread
    until it is done, so two batched calls at once (two layers, two CAMs in one program)
    can take every thread of a 2-core pool and wait on each other for ever."""
    values, vectors = jnp.linalg.eigh(matrix)
    return values[-1], vectors[:, -1]


def _rule(model, x, target, layer, activation, grads, eigen_smooth, kernel, gamma):
    n, h, w, c = activation.shape
    points = activation.reshape(n, h * w, c)
    points = jnp.where(jnp.isnan(points), 0.0, points)
    points = points - points.mean(axis=1, keepdims=True)
    return first_component(kernel_matrix(points, kernel, 1.0 / c if gamma is None else gamma)).reshape(n, h, w)


def kpca_cam(model, x, target, *, layer: str | Sequence[str] | None = None, kernel: str = "sigmoid",
             gamma: float | None = None, eigen_smooth: bool = False, resolution: str = "layer",
             aug_smooth: bool = False):
    _checks.check_choice(kernel, "kernel", KERNELS)
    if gamma is not None:
        gamma = float(gamma)
        if not gamma > 0 or gamma == float("inf"):
            raise InputError(f"`gamma` must be a positive number or None, got {gamma}")
    return _cam.run(model, x, target, _rule, layer=layer, eigen_smooth=eigen_smooth, resolution=resolution,
                    aug_smooth=aug_smooth, gradients=False, rule_options=(kernel, gamma))


kpca_cam.__doc__ = """KPCA-CAM: each image's centred (h·w, C) activations projected on the first
    kernel principal component (``KernelPCA(n_components=1, kernel, gamma)``).

    The map does not depend on ``target`` or ``eigen_smooth`` (always a projection).  Its
    sign is scikit-learn's: the eigenvector's largest entry in magnitude is positive.
""" + _cam.ARGS + """      kernel: ``"sigmoid"`` (the package's default), ``"rbf"``, ``"poly"`` (degree 3),
        ``"linear"`` or ``"cosine"``; coef0 = 1 as scikit-learn's.
      gamma: the kernel's scale; default 1 / channels (scikit-learn's).

    References:
      Karmani et al. KPCA-CAM: visual explainability of deep computer vision models using
      kernel PCA (MMSP 2024).
    """
