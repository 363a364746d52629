"""File I/O shared by weights, figures and the batch engine: atomic writes, jaxviz's own
temporary names, safe ``.npz`` reading, and names made printable.

jaxviz deletes nothing but its own temporary files.  A temporary file is named
``.<name>.~jaxviz-<host>-<pid>-<random>.tmp``: the host tag and process id say who made
it, so a later run removes one only when its maker was this host's process and has
exited (a SIGKILL left it), and only in the folders it is about to write.
"""

from __future__ import annotations

import hashlib
import os
import re
import socket
import tempfile
import zipfile
from pathlib import Path
from typing import Iterable

import numpy as np

from jaxviz.errors import InputError

_TEMP = re.compile(r"^\..+\.~jaxviz-(?P<host>[0-9a-f]{8})-(?P<pid>\d+)-[a-z0-9_]{8}\.tmp$")


def host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode(errors="surrogateescape")).hexdigest()[:8]


def temporary_prefix(name: str) -> str:
    return f".{name}.~jaxviz-{host_tag()}-{os.getpid()}-"


def is_own_temporary(name: str) -> bool:
    """Whether ``name`` is a jaxviz temporary file name (of any process)."""
    return _TEMP.match(name) is not None


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> None:
    """Writes ``data`` to ``path`` via a temporary file and a rename: never half-written.

    A symbolic link at ``path`` is refused rather than written through or replaced.
    ``fsync`` also makes it durable against power loss before the rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_symlink():
        raise InputError(f"refusing to write {shown(str(path))}: it is a symbolic link")
    fd, tmp = tempfile.mkstemp(prefix=temporary_prefix(path.name), suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if fsync:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_temporaries(folders: Iterable[Path]) -> int:
    """Deletes jaxviz temporary files left in ``folders`` (not below them) by exited
    processes of this host.  Returns how many were removed.  Nothing else is touched:
    not another name, not a link, not a live or another host's process's file."""
    me, removed = host_tag(), 0
    for folder in folders:
        try:
            entries = list(os.scandir(folder))
        except (FileNotFoundError, NotADirectoryError):
            continue
        for entry in entries:
            match = _TEMP.match(entry.name)
            if match is None or match["host"] != me or not entry.is_file(follow_symlinks=False):
                continue
            if _process_alive(int(match["pid"])):  # this process's own too: it may be writing
                continue
            try:
                os.unlink(entry.path)
                removed += 1
            except FileNotFoundError:
                pass
    return removed


_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")


def load_npz(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Every array of an ``.npz`` file, never unpickling.

    Raises:
      InputError: the file is empty, not a zip of ``.npy`` arrays (a text file, a bare
        ``.npy``), holds pickled objects, or is damaged; the message says which.
    """
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as err:
        raise InputError(f"cannot read {shown(str(path))}: {err.strerror or err}") from None
    if not head:
        raise InputError(f"{shown(str(path))} is empty")
    if head.startswith(_NPY_MAGIC):
        raise InputError(f"{shown(str(path))} is a single .npy array, not an .npz archive")
    if not head.startswith(_ZIP_MAGIC):
        kind = "pickled data (refused)" if head[:1] == b"\x80" else f"bytes {head[:4]!r}"
        raise InputError(f"{shown(str(path))} is not an .npz archive (it starts with {kind})")
    try:
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}
    except ValueError as err:
        if "pickle" in str(err):  # an object array inside the archive
            raise InputError(f"{shown(str(path))}: refused: an array holds pickled objects") from None
        raise InputError(f"{shown(str(path))}: damaged .npz ({err})") from None
    except (OSError, EOFError, zipfile.BadZipFile, KeyError) as err:
        raise InputError(f"{shown(str(path))}: damaged .npz ({type(err).__name__}: {err})") from None


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")


def shown(text: str) -> str:
    """``text`` with control characters (newlines too) and undecodable bytes escaped, so
    a file name printed in a message cannot forge or hide lines."""
    def escape(match):
        code = ord(match.group())
        if 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            return f"\\x{code - 0xDC00:02x}"
        return {"\n": "\\n", "\r": "\\r", "\t": "\\t"}.get(match.group(), f"\\u{code:04x}" if code > 0xFF
                                                        else f"\\x{code:02x}")

    return _CONTROL.sub(escape, text)
