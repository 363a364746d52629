"""Figures for people: normalised heat maps, overlays on the image, and the course's grids."""

from __future__ import annotations

import io
import os
import re
from typing import Sequence

import numpy as np
from PIL import Image

from jaxviz._io import atomic_write_bytes
from jaxviz.errors import InputError


def minmax(maps, *, over_batch: bool = False) -> np.ndarray:
    """Min–max to [0, 1], per map or (the course's GradCAM display) over the whole batch."""
    m = np.asarray(maps, np.float64)
    axes = None if over_batch else tuple(range(1, m.ndim))
    low = m.min(axis=axes, keepdims=True)
    high = m.max(axis=axes, keepdims=True)
    return (m - low) / np.where(high > low, high - low, 1.0)


def percentile_clip(maps, *, outlier_perc: float = 2.0, sign: str = "absolute_value") -> np.ndarray:
    """Captum-style normalisation (``visualization._normalize_attr``), per map.

    Divides by the value at which the cumulative sum of sorted |values| reaches
    ``100 − outlier_perc`` percent of the total, clips to [−1, 1] (or [0, 1] for
    ``sign="absolute_value"``/``"positive"``).
    """
    m = np.asarray(maps, np.float64)
    if sign == "absolute_value":
        m = np.abs(m)
    elif sign == "positive":
        m = np.maximum(m, 0)
    elif sign != "all":
        raise InputError(f"`sign` must be 'absolute_value', 'positive' or 'all', got {sign!r}")
    out = np.empty_like(m)
    for i, one in enumerate(m):
        values = np.sort(np.abs(one).ravel())
        cumulative = np.cumsum(values)
        if cumulative[-1] == 0:
            out[i] = 0
            continue
        index = np.searchsorted(cumulative, cumulative[-1] * (100 - outlier_perc) / 100)
        threshold = values[min(index, values.size - 1)]
        out[i] = np.clip(one / threshold, -1, 1)
    return out


def channel_max(attributions) -> np.ndarray:
    """(N, H, W, C) attributions → (N, H, W): max of |value| over channels (course display)."""
    return np.abs(np.asarray(attributions)).max(axis=-1)


def resize_maps(maps, size: tuple[int, int], *, resample=Image.BICUBIC) -> np.ndarray:
    """(N, h, w) maps → (N, H, W) with PIL (the course resizes GradCAM maps bicubically)."""
    out = [
        np.asarray(Image.fromarray(np.asarray(m, np.float32), mode="F").resize((size[1], size[0]), resample))
        for m in np.asarray(maps)
    ]
    return np.stack(out)


def colorize(heat, cmap: str = "jet") -> np.ndarray:
    """(H, W) values in [0, 1] → (H, W, 3) uint8 via a matplotlib colour map."""
    from matplotlib import colormaps

    rgba = colormaps[cmap](np.clip(np.asarray(heat, np.float64), 0, 1))
    return (rgba[..., :3] * 255).round().astype(np.uint8)


def overlay(image, heat, *, alpha: float = 0.5, cmap: str = "jet") -> np.ndarray:
    """Blends a coloured heat map (H, W) in [0, 1] over a uint8 RGB image (H, W, 3)."""
    image = np.asarray(image)
    heat = np.asarray(heat)
    if heat.shape != image.shape[:2]:
        raise InputError(f"heat map shape {heat.shape} does not match the image {image.shape[:2]}")
    blended = (1 - alpha) * image.astype(np.float64) + alpha * colorize(heat, cmap).astype(np.float64)
    return blended.round().astype(np.uint8)


def grid_png(
    rows: Sequence[Sequence[np.ndarray]],
    *,
    row_titles: Sequence[str] | None = None,
    col_titles: Sequence[str] | None = None,
    cell: float = 2.2,
) -> bytes:
    """A grid of images (uint8 RGB or 2-D maps in [0, 1]) as PNG bytes.

    Drawn on its own Agg canvas: no pyplot state and no global backend switch, so a
    caller's matplotlib set-up is left as it was."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg  # heavy: only when a grid is drawn
    from matplotlib.figure import Figure

    n_rows, n_cols = len(rows), max(len(r) for r in rows)
    fig = Figure(figsize=(cell * n_cols, cell * n_rows))
    FigureCanvasAgg(fig)
    axes = fig.subplots(n_rows, n_cols, squeeze=False)
    for r, row in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.axis("off")
            if c < len(row):
                img = np.asarray(row[c])
                ax.imshow(img, cmap="hot" if img.ndim == 2 else None, vmin=0, vmax=1 if img.ndim == 2 else None)
            if col_titles and r == 0 and c < len(col_titles):
                ax.set_title(col_titles[c], fontsize=9)
        if row_titles:
            axes[r][0].text(-0.08, 0.5, row_titles[r], transform=axes[r][0].transAxes, rotation=90,
                            va="center", ha="right", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=80)
    return buffer.getvalue()


def save_grid(path: str | os.PathLike, rows, **kwargs) -> None:
    """Writes :func:`grid_png` to ``path`` atomically."""
    atomic_write_bytes(path, grid_png(rows, **kwargs))


def randomisation_columns(n_steps: int) -> list[int]:
    """The steps a randomisation figure shows out of ``n_steps``: the trained model (0), the
    first three steps, a third and two thirds of the way, and the last."""
    return sorted(s for s in {0, 1, 2, 3, n_steps // 3, 2 * n_steps // 3, n_steps} if s <= n_steps)


def randomisation_png(image, maps: dict, titles: Sequence[str], *, caption: str = "") -> bytes:
    """Adebayo et al.'s cascading randomisation figure as PNG bytes: ``image``, then a row per
    method of its maps at the shown steps (|map| clipped at Captum's 2 %, resized to the image).

    Args:
      image: (H, W, 3) uint8.
      maps: ``{method: (steps, h, w) maps}``, the steps :func:`randomisation_columns` picks.
      titles: one per step ("trained", the layer randomised last, ...).
      caption: the image column's title (e.g. its class).

    Saved in a 96-colour palette: noisy maps do not compress, and figures live in git."""
    rows = []
    for steps in maps.values():
        steps = np.abs(np.asarray(steps, np.float32))
        if steps.shape[1:] != image.shape[:2]:
            steps = resize_maps(steps, image.shape[:2])
        rows.append([image] + [percentile_clip(steps[i:i + 1])[0] for i in range(len(steps))])
    grid = grid_png(rows, row_titles=[_wrap(m) for m in maps], col_titles=[_wrap(t) for t in (caption, *titles)],
                    cell=1.2)
    buffer = io.BytesIO()
    Image.open(io.BytesIO(grid)).convert("RGB").quantize(colors=96).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _wrap(text: str, width: int = 14) -> str:
    """``text`` on lines of about ``width`` characters, broken after '.', '-' or ' ' (layer
    names and method names are long beside a small panel)."""
    lines = [""]
    for piece in re.findall(r"[^.\- ]*[.\- ]?", text):
        if lines[-1] and len(lines[-1]) + len(piece) > width:
            lines.append("")
        lines[-1] += piece
    return "\n".join(line.strip() for line in lines)
