"""What a batch command reads: image files, folders, ``.npz`` arrays, labels files.

Every input becomes a :class:`Source` with a *key*: the relative, sanitised path its
outputs are named after, and a *digest* of its content.  A key keeps the file's
extension (``photos/a.jpg`` and ``photos/a.png`` are two inputs, so two keys) and
depends on the input's own path only, never on which other files are there; a name
that had to be sanitised carries a hash of the original, so two names cannot meet.
Keys never contain ``..``, absolute parts or separators taken from file names, so no
input name can place an output outside the output folder.
"""

from __future__ import annotations

import concurrent.futures
import hashlib
import re
import threading
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from jaxviz._io import file_sha256, load_npz, shown
from jaxviz.errors import ImageError, InputError

IMAGE_SUFFIXES = frozenset(
    ".jpg .jpeg .jpe .jfif .png .webp .bmp .gif .tif .tiff .ppm .pgm .pbm .pnm .tga .ico .jp2".split()
)
_UNSAFE = re.compile(r"[\x00-\x1f\x7f/\\:\ud800-\udfff]")
MAX_COMPONENT_BYTES = 180  # leaves room for ".overlay.png" and a temp-file prefix under 255


@dataclass(frozen=True)
class Source:
    """One input image: where it comes from and the key its outputs are named after."""

    key: str
    name: str
    path: Path | None = None
    index: int | None = None  # row of an .npz
    label: int | None = None  # the .npz's y, if any
    label_problem: str | None = None  # why the .npz's y gives this row no class
    digest: str = ""  # sha256 of the content (a file's bytes, an .npz row's pixels)


def key_seed(key: str) -> int:
    """A stable 31-bit number per output key: per-image randomness independent of batching."""
    return zlib.crc32(key.encode()) & 0x7FFFFFFF


def safe_component(text: str) -> str:
    """A file-name component that cannot leave its folder or hide.

    A name that had to change keeps a hash of the original, so two different names
    never become the same component."""
    original = text
    text = _UNSAFE.sub("_", text).strip()
    if text in ("", ".", ".."):
        text = "_" + text.replace(".", "_")
    if text.startswith("."):
        text = "_" + text[1:]
    if text != original:
        text += f"-{zlib.crc32(original.encode(errors='surrogateescape')):08x}"
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


def _array_digest(array: np.ndarray) -> str:
    header = f"{array.dtype.str}{array.shape}".encode()
    return hashlib.sha256(header + np.ascontiguousarray(array).tobytes()).hexdigest()


def _inside(path: Path, folder: Path | None) -> bool:
    return folder is not None and path.resolve().is_relative_to(folder)


def _labels_of(y: np.ndarray | None, n: int, num_classes: int) -> list[tuple[int | None, str | None]]:
    """Each row's class from an .npz's ``y``, or why it has none (checked per row)."""
    if y is None:
        return [(None, None)] * n
    if y.ndim != 1 or y.shape[0] != n:
        problem = f"y has shape {y.shape}, expected ({n},): one class per image of X"
        return [(None, problem)] * n
    if y.dtype.kind not in "iuf":
        return [(None, f"y has dtype {y.dtype}, expected integer classes")] * n
    out = []
    for value in y.tolist():
        if not float(value).is_integer():  # 2.7, NaN, inf
            out.append((None, f"y is {value!r}, not an integer class"))
        elif not 0 <= value < num_classes:
            out.append((None, f"y is {int(value)}, outside the classes 0..{num_classes - 1}"))
        else:
            out.append((int(value), None))
    return out


def _npz_sources(path: Path, seen: set[str], num_classes: int) -> list[Source]:
    data = load_npz(path)
    if "X" not in data:
        raise InputError(f"has no X array (has {sorted(data)})")
    images = data["X"]
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise InputError(f"X must be uint8 images of shape (N, H, W, 3), got {images.shape} {images.dtype}")
    rows = _labels_of(data.get("y"), images.shape[0], num_classes)
    sources = []
    for i, (label, problem) in enumerate(rows):
        key = _unique(safe_key((path.stem, f"{i:05d}")), seen)
        sources.append(Source(key, f"{path}[{i}]", path=path, index=i, label=label, label_problem=problem,
                              digest=_array_digest(images[i])))
    return sources


def collect(
    paths: Iterable[str | Path], *, exclude: Path | None = None, num_classes: int = 1000
) -> tuple[list[Source], list[tuple[str, str]]]:
    """Expands files, folders (recursively, image suffixes only, sorted) and ``.npz`` files.

    Nothing inside ``exclude`` (the output folder) is ever read: an output folder inside
    an input folder must not feed a run its own results.

    Returns the sources and ``(name, problem)`` for arguments that could not be used
    (missing paths, unreadable ``.npz``); the caller reports those and goes on.
    """
    exclude = exclude.resolve() if exclude is not None else None
    sources: list[Source] = []
    problems: list[tuple[str, str]] = []
    seen: set[str] = set()
    for arg in paths:
        path = Path(arg)
        try:
            if str(arg).startswith("skimage:"):
                name = str(arg)[len("skimage:"):]
                if name not in SAMPLE_IMAGES:
                    problems.append((str(arg), f"unknown sample; scikit-image has {', '.join(SAMPLE_IMAGES)}"))
                else:
                    sources.append(Source(_unique(safe_key(("skimage", name)), seen), str(arg), digest=str(arg)))
            elif _inside(path, exclude):
                problems.append((str(path), "is inside the output folder; jaxviz never reads its own outputs"))
            elif path.is_dir():
                files = sorted(
                    (p for p in path.rglob("*")
                     if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file() and not _inside(p, exclude)),
                    key=lambda p: p.relative_to(path).parts,
                )
                base = path.resolve().name or "input"
                for file in files:
                    rel = file.relative_to(path)
                    try:
                        digest = file_sha256(file)
                    except OSError as err:  # one unreadable file fails alone
                        problems.append((str(file), f"cannot read: {err.strerror or err}"))
                        continue
                    key = _unique(safe_key((base, *rel.parts)), seen)
                    sources.append(Source(key, str(file), path=file, digest=digest))
            elif path.suffix.lower() == ".npz" and path.is_file():
                try:
                    sources.extend(_npz_sources(path, seen, num_classes))
                except InputError as err:
                    problems.append((str(path), f"cannot read .npz: {err}"))
            elif path.is_file():
                sources.append(Source(_unique(safe_key((path.name,)), seen), str(path), path=path,
                                      digest=file_sha256(path)))
            else:
                problems.append((str(path), "no such file or folder"))
        except OSError as err:  # unreadable file or folder: that input fails alone
            problems.append((str(path), f"cannot read: {err.strerror or err}"))
    return sources, problems


class ImageReader:
    """Decodes sources to uint8 RGB; ``.npz`` files are read once and kept."""

    def __init__(self):
        self._arrays: dict[Path, np.ndarray] = {}
        self._lock = threading.Lock()

    def __call__(self, source: Source) -> np.ndarray:
        if source.path is None:
            return sample_image(source.name[len("skimage:"):])
        if source.index is None:
            from jaxviz.images import load_image  # jax: not needed to parse the command line

            return load_image(source.path)
        with self._lock:
            if source.path not in self._arrays:
                try:
                    self._arrays[source.path] = load_npz(source.path)["X"]
                except (InputError, KeyError) as err:
                    raise ImageError(f"{shown(source.name)}: cannot read .npz: {err}") from None
        arrays = self._arrays[source.path]
        image = arrays[source.index] if source.index < len(arrays) else None
        if image is None or image.dtype != np.uint8 or image.ndim != 3 or image.shape[-1] != 3:
            raise ImageError(f"{shown(source.name)}: the .npz changed while it was being read")
        if _array_digest(image) != source.digest:
            raise ImageError(f"{shown(source.name)}: the .npz changed while it was being read")
        return image


SAMPLE_IMAGES = ("chelsea", "coffee", "astronaut", "rocket", "cat", "immunohistochemistry")


def sample_image(name: str) -> np.ndarray:
    """A photo that ships with scikit-image, as uint8 RGB."""
    from skimage import data

    image = np.asarray(getattr(data, name)())
    return np.repeat(image[..., None], 3, -1) if image.ndim == 2 else image[..., :3].astype(np.uint8)


def read_labels(path: str | Path, num_classes: int = 1000) -> dict[str, int | str]:
    """A labels file: one ``name<TAB|,|space>class`` per line; a header line is skipped.

    Names may be file names (``a.jpg``), stems (``a``) or output keys.  A class that is
    not an integer in range maps its name to the problem (a string): that image fails
    alone.  A line with no class at all makes the file unreadable.
    """
    labels: dict[str, int | str] = {}
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read labels file {shown(str(path))}: {err}") from None
    for number, line in enumerate(lines, 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        fields = re.split(r"\t|,", line) if ("\t" in line or "," in line) else line.rsplit(None, 1)
        if len(fields) < 2:
            raise InputError(f"{shown(str(path))}:{number}: expected 'name<TAB>class', got {line!r}")
        name, value = fields[0].strip(), fields[-1].strip()
        where = f"{Path(path).name}:{number}"
        try:
            label = int(value)
        except ValueError:
            if number == 1:
                continue  # header
            labels[name] = f"{where}: class must be an integer, got {value!r}"
            continue
        if not 0 <= label < num_classes:
            labels[name] = f"{where}: class must be in 0..{num_classes - 1}, got {label}"
            continue
        labels[name] = label
    return labels


def label_for(source: Source, labels: dict[str, int | str]) -> int | str | None:
    """The source's class from a labels file, the problem with its line, or ``None``."""
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
