"""Argument checks shared by every public function.

Shape and dtype checks run at trace time (they only need static information).  Value
checks (NaN/inf, target range) run only on concrete arrays: inside a user's own ``jit``
the values are unknown, and the checks are skipped rather than forcing a host sync.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from jaxviz.errors import InputError, InputTypeError


def is_concrete(value) -> bool:
    return not isinstance(value, jax.core.Tracer)


@jax.jit
def _all_finite_on_device(x):
    return jnp.isfinite(x).all()


def all_finite(x) -> bool:
    """Whether ``x`` holds no NaN or inf.  A jax array is tested where it lies, and one flag
    crosses to the host: copying a GPU batch to test it there took most of a saliency call
    on an H200 (benchmarks/results/gpu-h200/notes.md)."""
    if isinstance(x, jax.Array):
        return bool(_all_finite_on_device(x))
    return bool(np.isfinite(np.asarray(x)).all())


def _from_torch(value, name: str):
    """A PyTorch tensor becomes numpy (the layout is still checked: NCHW gets its hint)."""
    if type(value).__module__.split(".")[0] != "torch":
        return value
    try:
        return value.detach().cpu().numpy()
    except Exception as err:  # noqa: BLE001 - bfloat16 and other dtypes numpy lacks
        raise InputTypeError(f"`{name}` is a torch tensor that numpy cannot hold ({err}); "
                             f"pass a numpy or jax array") from None


def check_images(x, *, name: str = "x", architecture=None):
    """Checks an NHWC float batch of normalised images and returns it as a jax array.

    Raises:
      InputTypeError: not an array, or an integer/bool dtype (uint8 images need
        :func:`jaxviz.preprocess` first).
      InputError: not rank 4, not 3 channels, too small for ``architecture`` (a model's
        :class:`~jaxviz.models.architecture.Architecture`), NaN or inf values.
    """
    x = _from_torch(x, name)
    if not hasattr(x, "shape") or not hasattr(x, "dtype"):
        try:
            x = np.asarray(x)
        except Exception:
            raise InputTypeError(f"`{name}` must be an array, got {type(x).__name__}") from None
    if not jnp.issubdtype(x.dtype, jnp.floating):
        hint = " (uint8 images: call jaxviz.preprocess first)" if x.dtype == np.uint8 else ""
        raise InputTypeError(f"`{name}` must have a floating dtype, got {x.dtype}{hint}")
    if x.ndim != 4:
        raise InputError(
            f"`{name}` must have shape (N, H, W, 3) (NHWC batch), got {tuple(x.shape)}"
            + (" — add a batch axis: x[None]" if x.ndim == 3 else "")
        )
    if x.shape[-1] != 3:
        hint = " — looks like NCHW; transpose with x.transpose(0, 2, 3, 1)" if x.shape[1] == 3 else ""
        raise InputError(f"`{name}` must have 3 channels last (NHWC), got shape {tuple(x.shape)}{hint}")
    if x.shape[0] < 1:
        raise InputError(f"`{name}` must hold at least one image, got shape {tuple(x.shape)}")
    if architecture is not None:
        architecture.check_input_size(x.shape[1], x.shape[2])
    if is_concrete(x) and not all_finite(x):
        raise InputError(f"`{name}` contains NaN or inf values")
    return jnp.asarray(x)


def check_target(target, n: int, *, num_classes: int, name: str = "target"):
    """Checks class indices, one per image; a scalar is broadcast to the batch.

    Returns:
      int32 array of shape (n,).
    """
    target = _from_torch(target, name)
    if not hasattr(target, "dtype"):
        target = np.asarray(target)
    if not jnp.issubdtype(target.dtype, jnp.integer):
        raise InputTypeError(f"`{name}` must hold integer class indices, got dtype {target.dtype}")
    if target.ndim == 0:
        target = jnp.broadcast_to(target, (n,))
    if tuple(target.shape) != (n,):
        raise InputError(f"`{name}` must have shape ({n},) (one class per image), got {tuple(target.shape)}")
    if is_concrete(target):
        values = np.asarray(target)
        bad = values[(values < 0) | (values >= num_classes)]
        if bad.size:
            raise InputError(f"`{name}` values must be in 0..{num_classes - 1}, got {bad.tolist()}")
    return jnp.asarray(target, jnp.int32)


def check_positive_int(value, name: str, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InputTypeError(f"`{name}` must be an int, got {type(value).__name__}")
    if value < minimum:
        raise InputError(f"`{name}` must be >= {minimum}, got {value}")
    return int(value)


def check_fraction(value, name: str) -> float:
    """A number in (0, 1] (a probability, a share of the image)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)) or not 0 < value <= 1:
        raise InputError(f"`{name}` must be in (0, 1], got {value!r}")
    return float(value)


def check_choice(value, name: str, choices) -> str:
    if value not in choices:
        raise InputError(f"`{name}` must be one of {list(choices)}, got {value!r}")
    return value
