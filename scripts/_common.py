"""Shared by the figure scripts: where the course's data is, the model, the output folder."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("JAXVIZ_SHARED") or ROOT.parent / "shared")


def parser(description: str, default_out: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--out", default=str(ROOT / "out" / default_out), help="output folder")
    p.add_argument("--weights", help="weight file (default: $JAXVIZ_WEIGHTS, then the caches)")
    return p


def course_images(n: int | None = None):
    """The course's validation images (uint8 NHWC) and labels."""
    path = SHARED / "data" / "imagenet_val_25.npz"
    if not path.is_file():
        sys.exit(f"{path} not found: set JAXVIZ_SHARED to the folder holding data/imagenet_val_25.npz")
    with np.load(path, allow_pickle=False) as data:
        X, y = data["X"], data["y"]
    return (X, y) if n is None else (X[:n], y[:n])


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)
