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


def manifest(out: Path, *, being_written: bool = False) -> list[dict]:
    """Every record, each line required to be whole JSON.  ``being_written``: a run is
    still appending, and a read can see the start of the line it is writing (Linux does
    not make a read atomic against a write), so the text after the last newline is left
    out; every earlier line must still be whole."""
    lines = []
    for path in sorted(out.glob("manifest*.jsonl")):
        text = path.read_text()
        if being_written:
            text = text[:text.rfind("\n") + 1]
        lines += [json.loads(line) for line in text.splitlines() if line.strip()]
    return lines


def ok(out: Path, method: str | None = None, *, being_written: bool = False) -> list[dict]:
    return [r for r in manifest(out, being_written=being_written)
            if r["status"] == "ok" and (method is None or r["method"] == method)]


def cli(*args) -> int:
    return main([str(a) for a in args])


