"""Helpers shared by the command-line tests: tiny photos, the CLI in-process, the manifest."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from PIL import Image

from jaxviz.cli.main import main

SIZE = 32  # small images: the numbers are checked against the API, not their meaning


def photo(seed: int, height: int = 40, width: int = 48) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.integers(0, 256, (height // 8, width // 8, 3), dtype=np.uint8)
    return np.asarray(Image.fromarray(base).resize((width, height), Image.BILINEAR))


def manifest(out: Path) -> list[dict]:
    lines = []
    for path in sorted(out.glob("manifest*.jsonl")):
        lines += [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return lines


def ok(out: Path, method: str | None = None) -> list[dict]:
    return [r for r in manifest(out) if r["status"] == "ok" and (method is None or r["method"] == method)]


def cli(*args) -> int:
    return main([str(a) for a in args])


