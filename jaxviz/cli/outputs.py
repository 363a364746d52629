"""Writing a batch job's outputs: the output folder (atomic writes, its lock, the manifest)
and the encoders that turn arrays into file bytes."""

from __future__ import annotations

import fcntl
import io
import json
import os
import threading
from pathlib import Path

import numpy as np
from PIL import Image

from jaxviz._io import atomic_write_bytes, remove_stale_temporaries, shown
from jaxviz.errors import InputError

MANIFEST = "manifest.jsonl"


class FolderInUseError(InputError):
    """Another jaxviz run holds the output folder."""


class OutputFolder:
    """Atomic writes below ``root`` only, the JSON-lines manifest, and the folder's lock.

    Opening takes an exclusive lock (``.jaxviz.lock``; a multi-process job's processes
    share it and each locks its own manifest), so two runs never compute or record the
    same outputs: the second says the folder is in use.  No file is written through a
    symbolic link: not an output, not the manifest, not a sub-folder.
    """

    def __init__(self, root: Path, manifest: str = MANIFEST, *, shared: bool = False):
        root = Path(root)
        try:
            root.mkdir(parents=True, exist_ok=True)
        except FileExistsError:
            raise InputError(f"--out {shown(str(root))} exists and is not a folder") from None
        except OSError as err:
            raise InputError(f"cannot create the output folder {shown(str(root))}: "
                             f"{err.strerror or err}") from None
        if not root.is_dir():
            raise InputError(f"--out {shown(str(root))} exists and is not a folder")
        self.root = root.resolve()
        self.manifest_path = self.root / manifest
        self._lock = threading.Lock()
        self._lock_fds = []
        try:
            self._take_lock(".jaxviz.lock", shared)
            if shared:
                self._take_lock(f".{manifest}.lock", False)
        except BaseException:
            self.close()
            raise
        if self.manifest_path.is_symlink():
            self.close()
            raise InputError(f"refusing to write the manifest {shown(str(self.manifest_path))}: "
                             f"it is a symbolic link")

    def _take_lock(self, name: str, shared: bool) -> None:
        path = self.root / name
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as err:
            raise InputError(f"cannot write to the output folder {shown(str(self.root))}: "
                             f"{err.strerror or err}") from None
        self._lock_fds.append(fd)
        try:
            fcntl.flock(fd, (fcntl.LOCK_SH if shared else fcntl.LOCK_EX) | fcntl.LOCK_NB)
        except BlockingIOError:
            raise FolderInUseError(
                f"the output folder {shown(str(self.root))} is in use by another jaxviz run; "
                f"wait for it to finish, or choose another --out") from None

    def close(self) -> None:
        for fd in self._lock_fds:
            os.close(fd)  # closing releases the lock
        self._lock_fds = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def path(self, relative: str) -> Path:
        """``root/relative``, refused when any part of it below ``root`` is a link or
        when it would leave ``root``."""
        path = self.root / relative
        current = self.root
        for part in Path(relative).parts:
            current = current / part
            if current.is_symlink():
                raise InputError(f"refusing to write through the symbolic link {shown(str(current))}")
        resolved = path.resolve()
        if not resolved.is_relative_to(self.root) or resolved == self.root:
            raise InputError(f"output {shown(relative)!r} would leave the output folder {shown(str(self.root))}")
        return path

    def write(self, relative: str, data: bytes) -> None:
        # a rename makes each file all-or-nothing against interruption; per-file fsync
        # (durability against power loss) would cost more than the compute here
        atomic_write_bytes(self.path(relative), data, fsync=False)

    def exists(self, relative: str) -> bool:
        try:
            return self.path(relative).is_file()
        except InputError:
            return False

    def record(self, entry: dict) -> None:
        # surrogates (file names that are not UTF-8) become \udcXX escapes: valid JSON
        line = (json.dumps(entry, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8", "backslashreplace")
        with self._lock:
            fd = os.open(self.manifest_path, os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o644)
            try:
                size = os.fstat(fd).st_size
                if size and os.pread(fd, 1, size - 1) != b"\n":
                    line = b"\n" + line  # a line cut by a kill: end it so ours stays whole
                os.write(fd, line)
            finally:
                os.close(fd)

    def records(self) -> dict[tuple[str, str], dict]:
        return read_records(self.root)

    def is_done(self, folder: str, unit, records: dict, arrays: str, figures) -> bool:
        """Done only when the record names this very unit (its input's path and content,
        method, options, target, architecture and weights), its files are there, and they
        include every file this run would write (``arrays``, ``figures``)."""
        entry = records.get((folder, unit.key))
        return (entry is not None and entry.get("digest") == unit.digest and entry.get("input") == unit.name
                and all(self.exists(p) for p in entry.get("outputs", ()))
                and (arrays == "none" or entry.get("arrays") == arrays)
                and set(figures) <= set(entry.get("figures", ())))

    def remove_stale_temporaries(self, relatives) -> int:
        """jaxviz's own temporary files left by killed runs, in the folders this run
        writes (``relatives``, below the root); nothing else is ever deleted."""
        folders = []
        for relative in relatives:
            try:
                folders.append(self.path(relative))
            except InputError:
                continue
        return remove_stale_temporaries(folders)


def read_records(root: Path) -> dict[tuple[str, str], dict]:
    """Latest successful record per (folder, key), over every process's manifest."""
    latest: dict[tuple[str, str], dict] = {}
    for path in sorted(Path(root).glob("manifest*.jsonl")):
        if path.is_symlink() or not path.is_file():
            continue
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                entry = json.loads(line)
            except json.JSONDecodeError:
                continue  # cut by an interruption
            if isinstance(entry, dict) and entry.get("status") == "ok":
                latest[(entry.get("folder"), entry.get("key"))] = entry
    return latest


def png_bytes(array) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(array)).save(buffer, format="PNG", compress_level=3)
    return buffer.getvalue()


def npy_bytes(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.asarray(array), allow_pickle=False)
    return buffer.getvalue()


def npz_bytes(arrays: dict) -> bytes:
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **{k: np.asarray(v) for k, v in arrays.items()})
    return buffer.getvalue()


def side_by_side(panels, gap: int = 4) -> np.ndarray:
    """uint8 RGB panels of the same height, left to right, white gaps between."""
    height = max(p.shape[0] for p in panels)
    out = []
    for i, p in enumerate(panels):
        if p.ndim == 2:
            p = np.repeat(p[..., None], 3, axis=-1)
        if p.shape[0] < height:
            p = np.pad(p, ((0, height - p.shape[0]), (0, 0), (0, 0)), constant_values=255)
        if i:
            out.append(np.full((height, gap, 3), 255, np.uint8))
        out.append(p)
    return np.concatenate(out, axis=1)


def array_files(main: np.ndarray, extras: dict, arrays_format: str) -> dict:
    """The raw-array files of one output: ``.npy`` (main only), ``.npz`` (with extras) or none."""
    if arrays_format == "npy":
        return {".npy": npy_bytes(main)}
    if arrays_format == "npz":
        return {".npz": npz_bytes({"attribution" if main.ndim else "value": main, **extras})}
    return {}
