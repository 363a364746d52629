"""Image I/O and the course's preprocessing: uint8 RGB ↔ ImageNet-normalised NHWC float32."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Sequence

import jax.numpy as jnp
import numpy as np
from PIL import Image, ImageOps

from jaxviz._io import shown
from jaxviz.errors import ImageError, InputError, InputTypeError

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def pixel_bounds(dtype):
    """Per-channel [low, high], shape (1, 1, 1, 3), of normalised images with pixels in [0, 1]."""
    low = jnp.asarray(-MEAN / STD, dtype).reshape(1, 1, 1, 3)
    high = jnp.asarray((1 - MEAN) / STD, dtype).reshape(1, 1, 1, 3)
    return low, high


def resized_size(height: int, width: int, size: int) -> tuple[int, int]:
    """torchvision ``Resize(size)``: the short side becomes ``size``, the long side scales (truncated)."""
    short, long = (height, width) if height <= width else (width, height)
    new_short, new_long = size, int(size * long / short)
    return (new_short, new_long) if height <= width else (new_long, new_short)


def _as_pil(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB") if image.mode != "RGB" else image
    array = np.asarray(image)
    if array.dtype != np.uint8:
        raise InputTypeError(f"`images` must be uint8 RGB, got dtype {array.dtype}")
    if array.ndim != 3 or array.shape[-1] != 3:
        raise InputError(f"each image must have shape (H, W, 3), got {array.shape}")
    return Image.fromarray(array, "RGB")


def preprocess(images, size: int | None = None) -> np.ndarray:
    """uint8 RGB images → ImageNet-normalised NHWC float32, as the course's ``preprocess``.

    The course runs ``T.Resize(size)`` (short side to ``size``, PIL bilinear), ``ToTensor``
    and ``Normalize``; this does the same with PIL and numpy, in float32.

    Args:
      images: one (H, W, 3) uint8 image, an (N, H, W, 3) uint8 batch, a PIL image, or a
        sequence of those (all of the same size after resizing).
      size: the short side after resizing; ``None`` keeps the size.

    Returns:
      (N, H', W', 3) float32.
    """
    if isinstance(images, Image.Image):
        images = [images]
    elif isinstance(images, np.ndarray) and images.ndim == 3:
        images = [images]
    elif not isinstance(images, (np.ndarray, Sequence)):
        raise InputTypeError(f"`images` must be uint8 arrays or PIL images, got {type(images).__name__}")
    batch = []
    for image in images:
        pil = _as_pil(image)
        if size is not None:
            if size < 1:
                raise InputError(f"`size` must be >= 1, got {size}")
            h, w = resized_size(pil.height, pil.width, size)
            if (h, w) != (pil.height, pil.width):
                pil = pil.resize((w, h), Image.BILINEAR)
        rgb = np.asarray(pil, dtype=np.float32) / np.float32(255.0)
        batch.append((rgb - MEAN) / STD)
    if not batch:
        raise InputError("`images` is empty")
    shapes = {b.shape for b in batch}
    if len(shapes) > 1:
        raise InputError(f"images have different sizes after resizing: {sorted(shapes)}; batch them separately")
    return np.stack(batch).astype(np.float32)


def deprocess(x, rescale: bool = False) -> np.ndarray:
    """Normalised NHWC (or HWC) float → uint8 RGB, as the course's ``deprocess``.

    ``x·std + mean``; with ``rescale`` a min–max rescale over each whole image (the course's
    default for display); then ``·255`` rounded to uint8.  ``ToPILImage`` truncates instead
    (one level lower at most); rounding makes ``deprocess(preprocess(img)) == img`` exact.
    Values outside [0, 1] are clipped (``ToPILImage`` would wrap them around).
    """
    x = np.asarray(x, dtype=np.float32)
    if x.shape[-1] != 3 or x.ndim not in (3, 4):
        raise InputError(f"`x` must have shape (N, H, W, 3) or (H, W, 3), got {x.shape}")
    rgb = x * STD + MEAN
    if rescale:
        axes = tuple(range(rgb.ndim - 3, rgb.ndim))
        low = rgb.min(axis=axes, keepdims=True)
        high = rgb.max(axis=axes, keepdims=True)
        rgb = (rgb - low) / np.maximum(high - low, np.finfo(np.float32).tiny)
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _to_rgb_array(image: Image.Image) -> np.ndarray:
    mode = image.mode
    if mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16-bit grayscale: scale 0..65535 to 0..255 (PIL's convert would clip at 255)
        a = np.asarray(image, dtype=np.float64)
        gray = np.clip(np.round(a / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode == "F":
        gray = np.clip(np.round(np.asarray(image, dtype=np.float64)), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in image.info):
        # transparent pixels are composited on white, as image viewers show them
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return np.asarray(Image.alpha_composite(background, rgba).convert("RGB"))
    return np.asarray(image.convert("RGB"))


def _upright(image: Image.Image) -> Image.Image:
    """The image as viewers show it: its EXIF orientation applied (phone photos)."""
    try:
        if image.getexif().get(0x0112, 1) in range(2, 9):
            return ImageOps.exif_transpose(image)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block: show the pixels as stored
        pass
    return image


def load_image(path: str | os.PathLike) -> np.ndarray:
    """Reads an image file as (H, W, 3) uint8 RGB.

    The EXIF orientation is applied, as every viewer does; of an animated GIF/WebP/PNG
    or a multi-page TIFF the first frame is used.  Grayscale is replicated to RGB, 16-bit
    is scaled to 8-bit, transparency is composited on white, CMYK and palettes are
    converted.  Decompression bombs (over PIL's
    ``MAX_IMAGE_PIXELS``) and unreadable files raise :class:`ImageError`.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageError(f"image file {shown(str(path))!r} does not exist")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                image.load()  # an animation's or a multi-page file's first frame
                return _to_rgb_array(_upright(image))
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
        raise ImageError(f"{shown(str(path))}: refused, image too large ({err})") from None
    except (OSError, ValueError, SyntaxError, EOFError) as err:
        raise ImageError(f"{shown(str(path))}: cannot read image ({type(err).__name__}: {err})") from None
