"""Reading torchvision weights into jaxviz parameters, safely and once.

Sources: a torchvision module or state_dict, a ``.pth``/``.pt`` file (``torch.load`` with
``weights_only=True``), an ``.npz`` (``allow_pickle=False``) or a ``.safetensors`` file.
fp16/bf16 tensors are upcast to float32.  Conversion checks keys and shapes strictly and
recognises weights of the other architecture.

Converted parameters are cached as safetensors, keyed by the source file's sha256, so a
file is converted once.  Weights are found in this order: an explicit path,
``$JAXVIZ_WEIGHTS``, jaxviz's cache (``<cache>/<arch>.safetensors``), torchvision's own
cache (``$TORCH_HOME/hub/checkpoints``), then torchvision's download.
"""

from __future__ import annotations

import functools
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from jaxviz._io import atomic_write_bytes, file_sha256, load_npz
from jaxviz.errors import ArchitectureMismatchError, InputError, WeightsError, WeightsNotFoundError
from jaxviz.models import catalog, network as _network

_MANIFEST_PATH = Path(__file__).with_name("torchvision_weights.json")
_FORMAT = "jaxviz-params-v1"  # safetensors metadata marking a converted cache file


def manifest() -> dict[str, dict[str, Any]]:
    """The known torchvision weight files: name → filename, url, sha256 prefix."""
    data = json.loads(_MANIFEST_PATH.read_text())
    return {k: v for k, v in data.items() if not k.startswith("_")}


# --------------------------------------------------------------------------- shapes & keys

# a BatchNorm's parameter leaves ↔ its state_dict entries
_BN_KEYS = {"scale": "weight", "bias": "bias", "mean": "running_mean", "var": "running_var"}
_OPTIONAL = "num_batches_tracked"  # BatchNorm's step counter: accepted, not needed in eval mode


@functools.cache
def param_shapes(arch: str) -> dict[str, dict[str, tuple[int, ...]]]:
    """Parameter shapes of ``arch``: ``{layer: {leaf: shape}}`` (HWIO kernels)."""
    return dict(_network.call_listing(catalog.network(catalog.check_arch(arch))).param_shapes)


def _is_batch_norm(leaves) -> bool:
    return "mean" in leaves


def _state_dict_entries(layer, leaves):
    """(state_dict key, leaf, torch shape) for one layer's parameters."""
    for leaf, shape in leaves.items():
        if _is_batch_norm(leaves):
            yield f"{layer}.{_BN_KEYS[leaf]}", leaf, shape
        elif leaf == "kernel":
            torch_shape = (shape[3], shape[2], shape[0], shape[1]) if len(shape) == 4 else (shape[1], shape[0])
            yield f"{layer}.weight", leaf, torch_shape
        else:
            yield f"{layer}.{leaf}", leaf, shape


@functools.cache
def state_dict_shapes(arch: str) -> dict[str, tuple[int, ...]]:
    """The torchvision state_dict keys of ``arch`` and their shapes (OIHW, (out, in))."""
    return {key: shape for layer, leaves in param_shapes(arch).items()
            for key, _, shape in _state_dict_entries(layer, leaves)}


def _comparable(state_dict: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    return {k: tuple(np.shape(v)) for k, v in _renamed_legacy_keys(state_dict).items()
            if not k.endswith("." + _OPTIONAL)}


def _renamed_legacy_keys(state_dict):
    # DenseNet files published before torchvision renamed ``norm.1`` to ``norm1`` (what
    # torchvision's own loader rewrites with the same pattern)
    pattern = re.compile(r"^(.*denselayer\d+\.(?:norm|relu|conv))\.((?:[12])\.(?:weight|bias|running_mean|running_var))$")
    if not any(pattern.match(k) for k in state_dict):
        return state_dict
    out = {}
    for key, value in state_dict.items():
        match = pattern.match(key)
        out[match.group(1) + match.group(2) if match else key] = value
    return out


def _differences(expected, found) -> list[str]:
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    wrong = sorted(f"{k}: expected {expected[k]}, got {found[k]}"
                   for k in set(expected) & set(found) if found[k] != expected[k])
    problems = []
    if missing:
        problems.append(f"missing keys {_few(missing)}")
    if unexpected:
        problems.append(f"unexpected keys {_few(unexpected)}")
    if wrong:
        problems.append(f"shape mismatches [{'; '.join(_few(wrong))}]")
    return problems


def _few(items, limit=12):
    return items if len(items) <= limit else items[:limit] + [f"… {len(items) - limit} more"]


def detect_arch(state_dict: Mapping[str, Any]) -> str | None:
    """The architecture whose keys and shapes are exactly ``state_dict``'s, or ``None``."""
    found = _comparable(state_dict)
    for arch in _candidates(found):
        if state_dict_shapes(arch) == found:
            return arch
    return None


def _candidates(found):
    # cheap filter before tracing an architecture: its first and last parameters are there
    for arch in catalog.ARCHITECTURES:
        first, last = _ends(arch)
        if first in found and last in found:
            yield arch


@functools.cache
def _ends(arch):
    keys = list(state_dict_shapes(arch))
    return keys[0], keys[-1]


def identify_arch(state_dict: Mapping[str, Any], source: str) -> str:
    """:func:`detect_arch`, or an error naming the nearest architecture's differing keys."""
    arch = detect_arch(state_dict)
    if arch is not None:
        return arch
    found = _comparable(state_dict)
    nearest = min(catalog.ARCHITECTURES,
                  key=lambda a: len(set(state_dict_shapes(a)) ^ set(found))
                  + sum(state_dict_shapes(a)[k] != found[k] for k in set(state_dict_shapes(a)) & set(found)))
    raise WeightsError(f"{source}: cannot tell the architecture: no known architecture has exactly these keys "
                       f"and shapes; the nearest, {nearest}, differs: "
                       + ", ".join(_differences(state_dict_shapes(nearest), found)))


def _to_numpy(value) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor; bf16 has no numpy dtype
        value = value.detach().cpu()
        if not value.dtype.is_floating_point or value.dtype.itemsize < 4:
            value = value.float()
        value = value.numpy()
    array = np.asarray(value)
    if array.dtype.kind == "f" and array.dtype.itemsize < 4:
        array = array.astype(np.float32)
    return array


def state_dict_to_params(state_dict: Mapping[str, Any], arch: str, *, source: str = "state_dict",
                         keep_float64: bool = False):
    """Converts a torchvision state_dict to parameters (float32 numpy, HWIO kernels;
    ``keep_float64``: float64 tensors stay float64, for a float64 model).

    ``num_batches_tracked`` entries may be present or not.

    Raises:
      ArchitectureMismatchError: the weights are those of another known architecture.
      WeightsError: keys missing or unexpected, or shapes that do not match; the message
        names the keys at fault.
    """
    catalog.check_arch(arch)
    expected = state_dict_shapes(arch)
    state_dict = _renamed_legacy_keys(state_dict)
    found_shapes = _comparable(state_dict)
    if found_shapes != expected:
        found = detect_arch(state_dict)
        if found is not None:
            raise ArchitectureMismatchError(
                f"{source} holds {found} weights, but the model asked for is {arch}; "
                f"pass arch={found!r} or weights for {arch}"
            )
        raise WeightsError(f"{source} is not a {arch} state_dict: " + ", ".join(_differences(expected, found_shapes)))
    params = {}
    for layer, leaves in param_shapes(arch).items():
        for key, leaf, _ in _state_dict_entries(layer, leaves):
            array = _to_numpy(state_dict[key])
            if array.dtype.kind != "f":
                raise WeightsError(f"{source}: {key} has dtype {array.dtype}, expected floating point")
            _check_finite(array, key, source)
            if leaf == "kernel":  # OIHW → HWIO, (out, in) → (in, out)
                array = array.transpose(2, 3, 1, 0) if array.ndim == 4 else array.T
            dtype = np.float64 if keep_float64 and array.dtype == np.float64 else np.float32
            params.setdefault(layer, {})[leaf] = np.ascontiguousarray(array, dtype=dtype)
    return params


def _check_finite(array: np.ndarray, key: str, source: str) -> None:
    bad = ~np.isfinite(array)
    if bad.any():
        raise WeightsError(f"{source}: tensor {key} has {int(bad.sum())} NaN or infinite values "
                           f"(of {array.size}); the weights are damaged")


def check_finite_params(params, source: str) -> None:
    """Raises :class:`WeightsError` naming the first tensor with NaN or inf values."""
    for layer, leaves in params.items():
        for leaf, value in leaves.items():
            _check_finite(np.asarray(value), f"{layer}.{leaf}", source)


def params_to_state_dict(params) -> dict[str, np.ndarray]:
    """Inverse of :func:`state_dict_to_params` (HWIO → OIHW; BatchNorm leaves renamed back)."""
    out = {}
    for layer, leaves in params.items():
        shapes = {leaf: np.shape(v) for leaf, v in leaves.items()}
        for key, leaf, _ in _state_dict_entries(layer, shapes):
            array = np.asarray(leaves[leaf])
            if leaf == "kernel":
                array = array.transpose(3, 2, 0, 1) if array.ndim == 4 else array.T
            out[key] = array
    return out


# --------------------------------------------------------------------------- files


def _read_pth(path: Path) -> dict[str, Any]:
    import pickle

    import torch

    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise WeightsError(
            f"{path}: refused to unpickle: the file holds objects other than tensors, and "
            f"jaxviz loads .pth files only with torch.load(weights_only=True) "
            f"({str(err).splitlines()[0]})"
        ) from None
    except Exception as err:  # truncated zip, not a torch file, ...
        raise WeightsError(f"{path}: not a readable PyTorch weight file ({type(err).__name__}: {err})") from None
    if isinstance(obj, Mapping) and "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: holds a {type(obj).__name__}, not a state_dict")
    return dict(obj)


def _read_npz(path: Path) -> dict[str, np.ndarray]:
    try:
        return load_npz(path)
    except InputError as err:
        raise WeightsError(str(err)) from None


def _read_safetensors(path: Path) -> tuple[dict[str, np.ndarray], dict[str, str]]:
    from safetensors import safe_open

    try:
        with safe_open(str(path), framework="numpy") as f:
            metadata = f.metadata() or {}
            return {k: f.get_tensor(k) for k in f.keys()}, metadata
    except Exception as err:
        raise WeightsError(f"{path}: not a readable .safetensors file ({type(err).__name__}: {err})") from None


def read_state_dict(path: str | os.PathLike) -> dict[str, Any]:
    """Reads a torchvision-layout state_dict from ``.pth``/``.pt``, ``.npz`` or ``.safetensors``."""
    path = Path(path)
    if not path.is_file():
        raise WeightsNotFoundError(f"weights file {str(path)!r} does not exist")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        return _read_npz(path)
    if suffix == ".safetensors":
        tensors, metadata = _read_safetensors(path)
        if metadata.get("format") == _FORMAT:
            return params_to_state_dict(_unflatten(tensors))
        return tensors
    if suffix in (".pth", ".pt", ".bin", ".ckpt"):
        return _read_pth(path)
    with open(path, "rb") as f:
        magic = f.read(8)
    if magic.startswith(b"PK"):
        try:
            return _read_npz(path)
        except WeightsError:
            return _read_pth(path)
    raise WeightsError(
        f"{path}: unknown weight file type {suffix!r}; expected .pth/.pt, .npz or .safetensors"
    )


def _flatten(params) -> dict[str, np.ndarray]:
    return {f"{layer}/{k}": np.asarray(v) for layer, leaves in params.items() for k, v in leaves.items()}


def _unflatten(tensors) -> dict[str, dict[str, np.ndarray]]:
    params: dict[str, dict[str, np.ndarray]] = {}
    for key, value in tensors.items():
        layer, leaf = key.rsplit("/", 1)
        params.setdefault(layer, {})[leaf] = value
    return params


def save_params(params, path: str | os.PathLike, *, arch: str, source_sha256: str = "") -> None:
    """Writes converted parameters as a jaxviz safetensors file (atomically)."""
    from safetensors.numpy import save

    metadata = {"format": _FORMAT, "arch": arch, "source_sha256": source_sha256}
    atomic_write_bytes(path, save(_flatten(params), metadata=metadata))


# --------------------------------------------------------------------------- cache & resolution


def cache_dir() -> Path:
    """jaxviz's cache: ``$JAXVIZ_CACHE_DIR``, else ``$XDG_CACHE_HOME/jaxviz``, else ``~/.cache/jaxviz``."""
    if os.environ.get("JAXVIZ_CACHE_DIR"):
        return Path(os.environ["JAXVIZ_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "jaxviz"


def torchvision_cache_dir() -> Path:
    """Where ``torch.hub`` keeps downloaded checkpoints (computed without importing torch)."""
    torch_home = os.environ.get("TORCH_HOME")
    if not torch_home:
        torch_home = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "torch"
    return Path(torch_home) / "hub" / "checkpoints"


@dataclass(frozen=True)
class WeightsSource:
    """Where weights were found: the file, how it was found, its sha256."""

    path: Path
    how: str
    sha256: str


def _search_places(arch: str) -> list[tuple[str, Path | None]]:
    env = os.environ.get("JAXVIZ_WEIGHTS")
    return [
        ("$JAXVIZ_WEIGHTS", Path(env) if env else None),
        ("jaxviz cache", cache_dir() / f"{arch}.safetensors"),
        ("torchvision cache", torchvision_cache_dir() / manifest()[arch]["filename"]),
    ]


def resolve_weights(
    arch: str = "squeezenet1_1",
    weights: str | os.PathLike | None = None,
    *,
    download: bool | None = None,
) -> WeightsSource:
    """Finds the weight file for ``arch`` in the documented order.

    Args:
      arch: architecture name.
      weights: an explicit file path (wins over everything else).
      download: try torchvision's download last; default: unless ``$JAXVIZ_OFFLINE`` is set.

    Raises:
      WeightsNotFoundError: nothing found; the message lists every way to provide weights.
    """
    catalog.check_arch(arch)
    if weights is not None:
        path = Path(weights)
        if not path.is_file():
            raise WeightsNotFoundError(f"`weights` file {str(path)!r} does not exist")
        return WeightsSource(path, "explicit path", file_sha256(path))
    places = _search_places(arch)
    for how, path in places:
        if path is None:
            continue
        if how == "$JAXVIZ_WEIGHTS" and not path.is_file():
            raise WeightsNotFoundError(f"$JAXVIZ_WEIGHTS points to {str(path)!r}, which does not exist")
        if path.is_file():
            return WeightsSource(path, how, file_sha256(path))
    if download is None:
        download = not os.environ.get("JAXVIZ_OFFLINE")
    entry = manifest()[arch]
    failure = "skipped ($JAXVIZ_OFFLINE is set)" if not download else ""
    if download:
        target = torchvision_cache_dir() / entry["filename"]
        try:
            import torch

            target.parent.mkdir(parents=True, exist_ok=True)
            torch.hub.download_url_to_file(entry["url"], str(target), hash_prefix=entry["sha256_prefix"])
            return WeightsSource(target, "torchvision download", file_sha256(target))
        except Exception as err:  # offline, proxy, hash mismatch, read-only disk
            failure = f"failed: {type(err).__name__}: {err}"
    raise WeightsNotFoundError(
        f"no {arch} weights found. Provide them in one of these ways:\n"
        f"  1. pass a file explicitly: load_model({arch!r}, weights='path/to/file') "
        f"(.pth, .npz or .safetensors; CLI: --weights PATH)\n"
        f"  2. set JAXVIZ_WEIGHTS=path/to/file (currently unset)\n"
        f"  3. convert once into jaxviz's cache: jaxviz weights convert SRC "
        f"(looked for {places[1][1]})\n"
        f"  4. put torchvision's file in its cache: {places[2][1]}\n"
        f"  5. let torchvision download {entry['url']} on a machine with internet ({failure})"
    )


def load_params(source: str | os.PathLike | WeightsSource, arch: str, *, cache: bool = True):
    """Loads and converts a weight file, through the conversion cache.

    Returns:
      (params, WeightsSource) with params a float32 numpy pytree.
    """
    if not isinstance(source, WeightsSource):
        path = Path(source)
        if not path.is_file():
            raise WeightsNotFoundError(f"weights file {str(path)!r} does not exist")
        source = WeightsSource(path, "explicit path", file_sha256(path))
    path = source.path
    if path.suffix.lower() == ".safetensors":
        tensors, metadata = _read_safetensors(path)
        if metadata.get("format") == _FORMAT:
            if metadata.get("arch") != arch:
                raise ArchitectureMismatchError(
                    f"{path} holds converted {metadata.get('arch')} weights, but the model asked for is {arch}"
                )
            params = _unflatten(tensors)
            # still strict: a hand-edited cache file must not slip through
            state_dict_to_params(params_to_state_dict(params), arch, source=str(path))
            return params, source
    cached = cache_dir() / f"{arch}-{source.sha256[:16]}.safetensors"
    if cache and cached.is_file():
        try:
            tensors, metadata = _read_safetensors(cached)
            if metadata.get("source_sha256") == source.sha256 and metadata.get("arch") == arch:
                params = _unflatten(tensors)
                check_finite_params(params, str(cached))
                return params, source
        except WeightsError:
            pass  # a damaged cache entry is rebuilt below
    params = state_dict_to_params(read_state_dict(path), arch, source=str(path))
    if cache:
        try:
            save_params(params, cached, arch=arch, source_sha256=source.sha256)
        except (OSError, InputError):  # read-only, or a link where the cache file would go
            pass  # only costs the conversion next time
    return params, source


def convert(src: str | os.PathLike, out: str | os.PathLike | None = None, *, arch: str | None = None) -> Path:
    """Converts a weight file to a jaxviz safetensors file.

    Args:
      src: source weights (.pth, .npz, .safetensors).
      out: destination; default ``<cache>/<arch>.safetensors``, the file jaxviz then uses
        for ``arch`` when no explicit path or ``$JAXVIZ_WEIGHTS`` is given.
      arch: architecture; default: detected from the weights.
    """
    state_dict = read_state_dict(src)
    if arch is None:
        arch = identify_arch(state_dict, str(src))
    params = state_dict_to_params(state_dict, arch, source=str(src))
    out = Path(out) if out is not None else cache_dir() / f"{arch}.safetensors"
    save_params(params, out, arch=arch, source_sha256=file_sha256(src))
    return out
