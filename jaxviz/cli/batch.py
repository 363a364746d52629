"""The batch subcommands (one per method), ``jaxviz run JOB.toml`` and their shared options."""

from __future__ import annotations

import argparse
import dataclasses
import tomllib
from pathlib import Path

from jaxviz._io import shown
from jaxviz.choices import ARCHITECTURES
from jaxviz.cli import common, inputs
from jaxviz.cli.methods import METHODS
from jaxviz.cli.plan import Job, MethodRun
from jaxviz.cli.registry import Method, positive
from jaxviz.errors import InputError, UnknownLayerError

FIGURES = ("overlay", "map", "grid")
COMMON_HELP = """
inputs: image files, folders (searched recursively for JPEG/PNG/WebP/BMP/GIF/TIFF…),
  .npz files with an X array (uint8 NHWC) and optionally y (labels), or skimage:NAME
  for scikit-image's sample photos (skimage:chelsea, skimage:coffee, …).
targets: --target for every image; else --labels FILE (lines "name<TAB>class", name a
  file name or stem); else an .npz's y; else the model's own top-1 class.
outputs: OUT/<method>/<input path, extension kept>.{npy,map.png,overlay.png,grid.png}
  and OUT/manifest.jsonl (one JSON line per output: input and its sha256, target, method,
  options, architecture, weights, files, seconds).  Files are written atomically; a
  re-run skips outputs whose record matches the same input content, options and weights
  (--force redoes them).  Only jaxviz's own temporary files are ever deleted; one run
  at a time per output folder.  Unreadable images are reported and skipped (exit 1).
exit status: 0 all done · 1 some inputs failed · 2 usage error · 3 error ·
  130 interrupted · 143 terminated.
"""


def add_batch_options(parser: argparse.ArgumentParser, *, default_size: int | None) -> None:
    group = parser.add_argument_group("batch")
    group.add_argument("--out", "-o", default=None, help="output folder (default ./jaxviz-out)")
    group.add_argument("--batch-size", "-b", type=int, default=None, help="images per compiled call (default 8)")
    if default_size is not None:
        group.add_argument("--size", type=int, default=None,
                           help=f"short side after resizing, 0 keeps it (default {default_size})")
        group.add_argument("--crop", action="store_true", help="centre-crop to a square after resizing")
    group.add_argument("--labels", metavar="FILE", help="per-image target classes")
    group.add_argument("--arrays", choices=["npy", "npz", "none"], default=None,
                       help="raw arrays: .npy (default), .npz with extras, or none")
    group.add_argument("--figures", default=None,
                       help="comma list of overlay,map,grid, or none (default all three)")
    group.add_argument("--workers", type=int, default=None, help="image-decoding threads (default 2)")
    group.add_argument("--force", action="store_true", help="recompute outputs that already exist")
    group.add_argument("--quiet", "-q", action="store_true", help="no progress, no summary (errors still shown)")
    scale = parser.add_argument_group("devices and hosts")
    scale.add_argument("--devices", type=int, default=None, help="local devices to shard over (default 0: all)")
    scale.add_argument("--coordinator", metavar="HOST:PORT",
                       help="multi-host: coordinator address (or $JAX_COORDINATOR_ADDRESS)")
    scale.add_argument("--num-processes", type=int, help="multi-host: process count (or $JAX_NUM_PROCESSES)")
    scale.add_argument("--process-id", type=int, help="multi-host: this process (or $JAX_PROCESS_ID)")
    common.add_model_options(parser)


def _add_method_options(parser: argparse.ArgumentParser, method: Method) -> None:
    group = parser.add_argument_group(f"{method.name} options")
    for option in method.options:
        kwargs = dict(dest=f"opt_{option.name}", default=None, help=option.help, metavar=option.name.upper())
        if option.type is bool:
            group.add_argument(option.flag, action="store_const", const=True, dest=kwargs["dest"],
                               default=None, help=option.help)
            continue
        if option.choices:
            kwargs["choices"] = option.choices
            kwargs.pop("metavar")
        if option.many:
            kwargs["nargs"] = "+"
        group.add_argument(option.flag, **kwargs)


def register(sub) -> None:
    for method in METHODS.values():
        examples = "\n".join("  " + line for line in method.examples.splitlines())
        parser = sub.add_parser(
            method.name, help=method.summary, description=method.summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
            epilog=f"examples:\n{examples}\n{COMMON_HELP}",
        )
        if method.inputs == "images":
            parser.add_argument("inputs", nargs="+", help="image files, folders, .npz files or skimage:NAME")
        _add_method_options(parser, method)
        add_batch_options(parser, default_size=method.size if method.inputs == "images" else None)
        parser.set_defaults(func=run_method, method=method)

    job = sub.add_parser(
        "run", help="run a job file: several methods over the same inputs",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=JOB_HELP,
    )
    job.add_argument("job", help="a TOML job file")
    add_batch_options(job, default_size=None)
    job.set_defaults(func=run_job_file)


JOB_HELP = """examples:
  jaxviz run maps.toml
  jaxviz run maps.toml --out elsewhere --force

a job file (TOML; relative paths are relative to the file):

  inputs = ["photos/", "more.npz"]
  out = "maps"
  batch_size = 16
  labels = "labels.tsv"          # optional; else .npz y, else top-1

  [saliency]
  [gradcam]                      # layer: default the model's last convolutional block
  [integrated-gradients]
  n_steps = 32
  [[occlusion]]                  # a method twice: give each a folder
  folder = "occlusion-15"
  [[occlusion]]
  folder = "occlusion-30"
  window = 30
  [fool]
  target = 6
  [class-viz]
  classes = [76, 78, 113]

Top-level keys: inputs, out, batch_size, size, crop, labels, target, arrays, figures,
workers, devices, arch, weights.  A method table takes that method's options (as in
`jaxviz METHOD --help`, with _ for -) and folder, size, crop.  The model and each
compiled function are built once for the whole job.
""" + COMMON_HELP


def _figures(value) -> frozenset:
    if value is None:
        return frozenset(FIGURES)
    items = value if isinstance(value, (list, tuple)) else [v for v in str(value).split(",")]
    items = [i.strip() for i in items if i.strip()]
    if items == ["none"]:
        return frozenset()
    unknown = set(items) - set(FIGURES)
    if unknown:
        raise InputError(f"figures must be a list of {', '.join(FIGURES)} (or none), got {sorted(unknown)}")
    return frozenset(items)


def method_options(method: Method, given: dict, where: str = "") -> dict:
    options = method.defaults()
    valid = {o.name: o for o in method.options}
    for name, value in given.items():
        if name not in valid:
            raise InputError(f"{where}unknown option {name!r} for {method.name}; valid: {', '.join(valid)}")
        options[name] = valid[name].parse(value, where)
    method.check(options)
    return options


def resolve_for_arch(runs: list[MethodRun], arch: str, target, where: str = "") -> list[MethodRun]:
    """Checks what depends on the architecture — the architecture itself, class indices,
    layer names — before any model is loaded or any folder is made, and fills in the
    architecture's defaults (a layer left unset becomes its default layer)."""
    from jaxviz.models import describe

    if not isinstance(arch, str) or arch not in ARCHITECTURES:
        raise InputError(f"{where}`arch` must be one of {', '.join(ARCHITECTURES)}, got {arch!r}")
    description = describe(arch)

    def check_class(value, name):
        try:
            description.check_class(value, name)
        except InputError as err:
            raise InputError(f"{where}{err}") from None

    if target is not None:
        check_class(target, "target")
    resolved = []
    for run in runs:
        options = dict(run.options)
        for option in run.method.options:
            if option.kind == "layer" and options.get(option.name) is None:
                default = description.default_layer
                options[option.name] = [default] if option.many else default
            value = options.get(option.name)
            if value is None or not option.kind:
                continue
            for item in value if option.many else [value]:
                if option.kind == "class":
                    check_class(item, option.name)
                elif option.kind == "layer":
                    try:
                        description.check_layers([item])
                    except UnknownLayerError as err:
                        raise UnknownLayerError(f"{where}{err}") from None
        resolved.append(dataclasses.replace(run, options=options))
    return resolved


def build_job(settings: dict, runs: list[MethodRun], args, where: str = "") -> Job:
    """A :class:`Job` from job-file/command settings, command-line flags taking precedence.

    Everything that can be checked without the model is checked here, before the output
    folder exists: options, classes and layers against the architecture, the inputs."""
    from jaxviz import sharding
    from jaxviz.cli import engine
    from jaxviz.models import describe

    def pick(name, default=None):
        value = getattr(args, name, None)
        return value if value is not None else settings.get(name, default)

    arch = pick("arch", common.DEFAULT_ARCH)
    target = settings.get("target")
    runs = resolve_for_arch(runs, arch, target, where)
    out = Path(pick("out", "jaxviz-out"))
    if out.exists() and not out.is_dir():
        raise InputError(f"--out {shown(str(out))} exists and is not a folder")
    job = Job(
        runs=runs, sources=[], out=out,
        batch_size=positive("batch_size", pick("batch_size", 8), minimum=1),
        target=target,
        arrays=pick("arrays", "npy"), figures=_figures(pick("figures")),
        workers=positive("workers", pick("workers", 2), minimum=1), force=bool(args.force or settings.get("force")),
        quiet=bool(args.quiet), arch=arch, weights=pick("weights"),
        devices=positive("devices", pick("devices", 0), minimum=0),
    )
    labels_path = pick("labels")
    num_classes = describe(arch).num_classes
    labels = inputs.read_labels(labels_path, num_classes) if labels_path else None
    process_index, process_count = sharding.initialize(
        getattr(args, "coordinator", None), getattr(args, "num_processes", None), getattr(args, "process_id", None))
    sources, problems = inputs.collect(settings.get("inputs", []), exclude=out, num_classes=num_classes)
    engine.jaxviz_devices(job.devices)  # a device count this machine lacks: an error now
    return dataclasses.replace(job, sources=sources, problems=problems, labels=labels,
                               process_index=process_index, process_count=process_count)


def run_method(args) -> int:
    method: Method = args.method
    given = {o.name: getattr(args, f"opt_{o.name}") for o in method.options
             if getattr(args, f"opt_{o.name}") is not None}
    options = method_options(method, given)
    size = getattr(args, "size", None)
    size = method.size if size is None else positive("size", size, minimum=0)
    run = MethodRun(method, options, method.name, size, bool(getattr(args, "crop", False)))
    settings = {"inputs": getattr(args, "inputs", [])}
    return _execute(build_job(settings, [run], args))


def _execute(job: Job) -> int:
    from jaxviz.cli import engine

    if not job.sources and not job.problems and any(r.method.inputs == "images" for r in job.runs):
        raise InputError("no images found in the inputs")
    summary = engine.execute(job)
    return common.EXIT_PARTIAL if summary.exit_code else common.EXIT_OK


def _integer(minimum):
    def check(value):
        return None if isinstance(value, int) and not isinstance(value, bool) and value >= minimum \
            else f"an integer >= {minimum}"
    return check


def _of_type(kind, description):
    return lambda value: None if isinstance(value, kind) else description


def _figures_value(value):
    return None if isinstance(value, str) or (isinstance(value, list) and all(isinstance(v, str) for v in value)) \
        else "a comma list or a list of overlay, map, grid (or none)"


# top-level job-file keys and what each must be (None: fine, else the expectation)
JOB_KEYS = {
    "inputs": lambda v: None if isinstance(v, str) or (isinstance(v, list) and all(isinstance(i, str) for i in v))
    else "a list of paths",
    "out": _of_type(str, "a path string"), "labels": _of_type(str, "a path string"),
    "weights": _of_type(str, "a path string"), "arch": _of_type(str, "an architecture name"),
    "batch_size": _integer(1), "size": _integer(0), "workers": _integer(1), "devices": _integer(0),
    "target": _integer(0), "crop": _of_type(bool, "true or false"), "force": _of_type(bool, "true or false"),
    "arrays": lambda v: None if v in ("npy", "npz", "none") else "npy, npz or none", "figures": _figures_value,
}
RUN_KEYS = {"folder": _of_type(str, "a plain folder name"), "size": _integer(0), "crop": _of_type(bool, "true or false")}


def load_job_file(path: str | Path) -> tuple[dict, list[MethodRun]]:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"cannot read job file {shown(str(path))}: {err}") from None
    except tomllib.TOMLDecodeError as err:
        raise InputError(f"{shown(str(path))}: not valid TOML: {err}") from None
    base = path.resolve().parent
    settings, runs, folders = {}, [], set()
    for key, value in data.items():
        if key in METHODS:
            tables = value if isinstance(value, list) else [value]
            for table in tables:
                if not isinstance(table, dict):
                    raise InputError(f"{shown(str(path))}: [{key}] must be a table of options")
                for run_key, check in RUN_KEYS.items():
                    problem = check(table[run_key]) if run_key in table else None
                    if problem:
                        raise InputError(f"{shown(path.name)} [{key}]: `{run_key}` must be {problem}, "
                                         f"got {table[run_key]!r}")
                runs.append(_job_run(METHODS[key], table, data, f"{shown(path.name)} [{key}]: "))
        elif key in JOB_KEYS:
            problem = JOB_KEYS[key](value)
            if problem:
                raise InputError(f"{shown(str(path))}: `{key}` must be {problem}, got {value!r}")
            settings[key] = value
        else:
            raise InputError(f"{path}: unknown key {key!r}; top-level keys: {', '.join(sorted(JOB_KEYS))}; "
                             f"method tables: {', '.join(METHODS)}")
    if not runs:
        raise InputError(f"{path}: no method tables (e.g. [saliency]); methods: {', '.join(METHODS)}")
    for run in runs:
        if run.folder in folders:
            raise InputError(f"{path}: two runs write to {run.folder!r}; give each a distinct `folder`")
        folders.add(run.folder)
    inputs_list = settings.get("inputs", [])  # types checked by JOB_KEYS above
    inputs_list = [inputs_list] if isinstance(inputs_list, str) else inputs_list
    settings["inputs"] = [i if i.startswith("skimage:") else str(base / i) for i in inputs_list]
    for key in ("out", "labels", "weights"):
        if key in settings:
            settings[key] = str(base / settings[key])
    return settings, runs


def _job_run(method: Method, table: dict, data: dict, where: str) -> MethodRun:
    own = {k: v for k, v in table.items() if k not in RUN_KEYS}
    if "target" in data and "target" not in own and method.takes("target"):
        problem = JOB_KEYS["target"](data["target"])
        if problem:
            raise InputError(f"{where}`target` must be {problem}, got {data['target']!r}")
        own["target"] = data["target"]
    options = method_options(method, own, where)
    folder = table.get("folder", method.name)
    if not isinstance(folder, str) or inputs.safe_component(folder) != folder:
        raise InputError(f"{where}`folder` must be a plain folder name, got {folder!r}")
    size = table.get("size", data.get("size", method.size))
    return MethodRun(method, options, folder, size, bool(table.get("crop", data.get("crop", False))))


def run_job_file(args) -> int:
    settings, runs = load_job_file(args.job)
    return _execute(build_job(settings, runs, args, f"{shown(Path(args.job).name)}: "))
