"""What a batch command reads: image files, folders, ``.npz`` arrays, labels files.

Every input becomes a :class:`Source` with a *key*: the relative, sanitised stem its
outputs are named after.  Keys never contain ``..``, absolute parts or separators taken
from file names, so no input name can place an output outside the output folder.
"""

from __future__ import annotations

import concurrent.futures
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from jaxviz.errors import ImageError, InputError

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .bmp .gif .tif .tiff .ppm .pgm .pbm .pnm .tga .ico .jp2".split()
)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:]")
MAX_COMPONENT_BYTES = 180  # leaves room for ".overlay.png" and a temp-file prefix under 255


@dataclass(frozen=True)
class Source:
    """One input image: where it comes from and the key its outputs are named after."""

    key: str
    name: str
    path: Path | None = None
    index: int | None = None  # row of an .npz
    label: int | None = None  # the .npz's y, if any


def key_seed(key: str) -> int:
    """A stable 31-bit number per output key: per-image randomness independent of batching."""
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def safe_component(text: str) -> str:
    """A file-name component that cannot leave its folder or hide."""
    text = _UNSAFE.sub("_", text).strip()
    if text in ("", ".", ".."):
        text = "_" + text.replace(".", "_")
    if text.startswith("."):
        text = "_" + text[1:]
    encoded = text.encode()
    if len(encoded) > MAX_COMPONENT_BYTES:
        digest = f"{zlib.crc32(encoded):08x}"
        text = encoded[: MAX_COMPONENT_BYTES - 9].decode(errors="ignore") + "-" + digest
    return text


def safe_key(parts: Iterable[str]) -> str:
    return "/".join(safe_component(p) for p in parts)


def _unique(key: str, seen: set[str]) -> str:
    candidate, n = key, 1
    while candidate in seen:
        n += 1
        candidate = f"{key}-{n}"
    seen.add(candidate)
    return candidate


def collect(paths: Iterable[str | Path]) -> tuple[list[Source], list[tuple[str, str]]]:
    """Expands files, folders (recursively, image suffixes only, sorted) and ``.npz`` files.

    Returns the sources and ``(name, problem)`` for arguments that could not be used
    (missing paths, unreadable ``.npz``); the caller reports those and goes on.
    """
    sources: list[Source] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for arg in paths:
        path = Path(arg)
        if str(arg).startswith("skimage:"):
            name = str(arg)[len("skimage:"):]
            if name not in SAMPLE_IMAGES:
                problems.append((str(arg), f"unknown sample; scikit-image has {', '.join(SAMPLE_IMAGES)}"))
            else:
                sources.append(Source(_unique(safe_key(("skimage", name)), seen), str(arg)))
        elif path.is_dir():
            files = sorted(
                (p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()),
                key=lambda p: p.relative_to(path).parts,
            )
            base = path.resolve().name or "input"
            for file in files:
                rel = file.relative_to(path)
                key = _unique(safe_key((base, *rel.parent.parts, rel.stem)), seen)
                sources.append(Source(key, str(file), path=file))
        elif path.suffix.lower() == ".npz" and path.is_file():
            try:
                with np.load(path, allow_pickle=False) as data:
                    if "X" not in data:
                        raise InputError(f"has no X array (has {sorted(data.files)})")
                    n = data["X"].shape[0]
                    labels = data["y"] if "y" in data else None
            except (OSError, ValueError, InputError) as err:
                problems.append((str(path), f"cannot read .npz: {err}"))
                continue
            for i in range(n):
                key = _unique(safe_key((path.stem, f"{i:05d}")), seen)
                label = int(labels[i]) if labels is not None else None
                sources.append(Source(key, f"{path}[{i}]", path=path, index=i, label=label))
        elif path.is_file():
            sources.append(Source(_unique(safe_key((path.stem,)), seen), str(path), path=path))
        else:
            problems.append((str(path), "no such file or folder"))
    return sources, problems


class ImageReader:
    """Decodes sources to uint8 RGB; ``.npz`` files are read once and kept."""

    def __init__(self):
        self._arrays: dict[Path, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, source: Source) -> np.ndarray:
        import jaxviz

        if source.path is None:
            return sample_image(source.name[len("skimage:"):])
        if source.index is None:
            return jaxviz.load_image(source.path)
        with self._lock:
            if source.path not in self._arrays:
                with np.load(source.path, allow_pickle=False) as data:
                    self._arrays[source.path] = data["X"]
        image = self._arrays[source.path][source.index]
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ImageError(f"{source.name}: expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
        return image


SAMPLE_IMAGES = ("chelsea", "coffee", "astronaut", "rocket", "cat", "immunohistochemistry")


def sample_image(name: str) -> np.ndarray:
    """A photo that ships with scikit-image, as uint8 RGB."""
    from skimage import data

    image = np.asarray(getattr(data, name)())
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3].astype(np.uint8)


def read_labels(path: str | Path) -> dict[str, int]:
    """A labels file: one ``name<TAB|,|space>class`` per line; a header line is skipped.

    Names may be file names (``a.jpg``), stems (``a``) or output keys.
    """
    labels: dict[str, int] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read labels file {path}: {err}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = re.split(r"\t|,", line) if ("\t" in line or "," in line) else line.rsplit(None, 1)
        if len(fields) < 2:
            raise InputError(f"{path}:{number}: expected 'name<TAB>class', got {line!r}")
        name, value = fields[0].strip(), fields[-1].strip()
        try:
            label = int(value)
        except ValueError:
            if number == 1:
                continue  # header
            raise InputError(f"{path}:{number}: class must be an integer, got {value!r}") from None
        if not 0 <= label < 1000:
            raise InputError(f"{path}:{number}: class must be in 0..999, got {label}")
        labels[name] = label
    return labels


def label_for(source: Source, labels: dict[str, int]) -> int | None:
    candidates = [source.key]
    if source.path is not None and source.index is None:
        candidates += [source.path.name, source.path.stem, str(source.path)]
    elif source.index is not None:
        candidates += [f"{source.path.name}[{source.index}]", str(source.index)]
    return next((labels[c] for c in candidates if c in labels), None)


def prefetch(
    fn: Callable, items: Iterable, *, workers: int = 2, depth: int = 16
) -> Iterator[tuple[object, object, BaseException | None]]:
    """``(item, fn(item), error)`` in input order, ``fn`` running ahead in threads.

    At most ``depth`` results wait at once, so memory stays bounded however long the
    input list is.  Image decoding and resizing release the GIL, so threads overlap
    them with the devices' compute.
    """
    items = iter(items)
    with concurrent.futures.ThreadPoolExecutor(max(1, workers), thread_name_prefix="jaxviz-load") as pool:
        pending: list[tuple[object, concurrent.futures.Future]] = []
        try:
            while True:
                while len(pending) < depth:
                    item = next(items, _END)
                    if item is _END:
                        break
                    pending.append((item, pool.submit(fn, item)))
                if not pending:
                    return
                item, future = pending.pop(0)
                try:
                    yield item, future.result(), None
                except Exception as err:  # noqa: BLE001 - reported per input by the caller
                    yield item, None, err
        finally:
            for _, future in pending:
                future.cancel()


_END = object()
