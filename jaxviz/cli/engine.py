"""Runs a batch job: methods × inputs → files, resumable, atomic, sharded across devices.

The model and each method's compiled function are built once per job.  Images are
decoded and resized in background threads, grouped by (method, shape) into batches of
``batch_size`` and the last batch padded, so one shape compiles once.  Every file is
written via a temporary file and a rename; a unit (one method on one input) is recorded
in the manifest only after all its files exist, and a re-run skips recorded units whose
files are all there.  One bad input fails alone; the rest of the job completes.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import fcntl
import hashlib
import json
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from jaxviz import _compiled, sharding
from jaxviz._io import atomic_write_bytes, remove_stale_temporaries, shown
from jaxviz.cli import inputs as inputs_mod
from jaxviz.cli.methods import Method
from jaxviz.cli.progress import Progress
from jaxviz.errors import ImageError, InputError, JaxvizError

MANIFEST = "manifest.jsonl"
MAX_UPSCALED_SIDE = 4096  # a 1×1000 strip resized to a 224 short side would be 224×224000


@dataclass
class MethodRun:
    """One method with its options, writing into ``out/<folder>/``."""

    method: Method
    options: dict
    folder: str
    size: int
    crop: bool = False

    def variants(self):
        return self.method.variants(self.options)


@dataclass
class Job:
    runs: list[MethodRun]
    sources: list[inputs_mod.Source]
    out: Path
    batch_size: int = 8
    labels: dict | None = None
    target: int | None = None
    arrays: str = "npy"
    figures: frozenset = frozenset({"overlay", "map", "grid"})
    workers: int = 2
    force: bool = False
    quiet: bool = False
    arch: str = "squeezenet1_1"
    weights: str | None = None
    weights_sha256: str = ""  # part of every output's identity: other weights, other outputs
    devices: int = 0  # 0: all local devices
    process_index: int = 0
    process_count: int = 1
    problems: list = field(default_factory=list)  # (input, message) found while collecting
    run_sources: dict = field(default_factory=dict)  # run index → its own inputs (demo: style content)

    def sources_for(self, run: int) -> list:
        return self.run_sources.get(run, self.sources)

    def all_sources(self) -> list:
        seen = dict.fromkeys(self.sources)
        for extra in self.run_sources.values():
            seen.update(dict.fromkeys(extra))
        return list(seen)


@dataclass
class Unit:
    run: int
    key: str
    source: inputs_mod.Source | None = None
    variant: object = None
    target: int | None = None  # None: the model's top-1
    target_from: str = ""
    cls: int | None = None
    digest: str = ""

    @property
    def name(self) -> str:
        return self.source.name if self.source is not None else f"class {self.cls}"


@dataclass
class Summary:
    done: int
    skipped: int
    failed: int
    seconds: float
    rate: float
    complete: bool = True  # every unit of the job (all processes' shares) has its files

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or not self.complete else 0


# --------------------------------------------------------------------------- output folder


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
        self.wanted = None  # (arrays, figures) a run asks for; None: any record's files do
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
        if not path.resolve().is_relative_to(self.root) or path.resolve() == self.root:
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

    def is_done(self, folder: str, unit: Unit, records: dict) -> bool:
        """Done only when the record names this very unit (its input's path and content,
        method, options, target, architecture and weights) and its files are there."""
        entry = records.get((folder, unit.key))
        return (entry is not None and entry.get("digest") == unit.digest and entry.get("input") == unit.name
                and all(self.exists(p) for p in entry.get("outputs", ()))
                and self._covers(entry))

    def _covers(self, entry: dict) -> bool:
        """Whether a record's files are all this run would write (``--arrays``, ``--figures``)."""
        if self.wanted is None:
            return True
        arrays, figures = self.wanted
        return (arrays == "none" or entry.get("arrays") == arrays) and figures <= set(entry.get("figures", ()))

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


# --------------------------------------------------------------------------- planning


def _digest(run: MethodRun, target_spec: str, job: Job, source_digest: str, name: str) -> str:
    spec = {"method": run.method.name, "options": run.options, "size": run.size, "crop": run.crop,
            "target": target_spec, "arch": job.arch, "weights": job.weights_sha256,
            "input": name, "input_sha256": source_digest}
    text = json.dumps(spec, sort_keys=True, default=lambda v: getattr(v, "source", str(v)))
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


def plan(job: Job) -> tuple[list[Unit], list[tuple[str, str]]]:
    """Every unit of the job (all processes), and the inputs that fail before any compute.

    Raises:
      InputError: two units would write the same output name.
    """
    units, failures = [], []
    for r, run in enumerate(job.runs):
        method = run.method
        if method.inputs == "classes":
            from jaxviz.labels import class_names

            names = class_names()
            for c in run.options["classes"]:
                key = inputs_mod.safe_component(f"{c:03d}-{names[c]}")
                unit = Unit(r, key, cls=c, target=c, target_from="class")
                unit.digest = _digest(run, f"class:{c}", job, "", unit.name)
                units.append(unit)
            continue
        variants = run.variants()
        labels_seen = [getattr(v, "label", None) for v in variants]
        if len(set(labels_seen)) != len(labels_seen):
            raise InputError(f"{method.name}: two styles share the name {labels_seen}; rename one file")
        variant_digests = [_variant_digest(v) for v in variants]
        for source in job.sources_for(r):
            target, target_from = _resolve_target(job, run, source)
            if target_from == "missing":
                failures.append((source.name, f"{method.name}: {target}"))
                continue
            spec = "top1" if target is None else f"{target_from}:{target}"
            for variant, variant_digest in zip(variants, variant_digests):
                key = source.key if variant is None else f"{source.key}__{inputs_mod.safe_component(variant.label)}"
                digest = _digest(run, spec, job, source.digest + variant_digest, source.name)
                units.append(Unit(r, key, source=source, variant=variant, target=target, target_from=target_from,
                                  digest=digest))
    owners: dict[tuple[str, str], Unit] = {}
    for unit in units:
        other = owners.setdefault((job.runs[unit.run].folder, unit.key), unit)
        if other is not unit:  # the keys are unique by construction; this guards that promise
            raise InputError(f"{shown(other.name)} and {shown(unit.name)} would share the output name "
                             f"{shown(unit.key)!r}")
    return units, failures


def _variant_digest(variant) -> str:
    """A style given as a file is part of its outputs' identity: its content too."""
    if variant is None or variant.source.startswith("skimage:"):
        return ""
    if variant.is_preset:
        variant.path()  # the course's style image must be there: an error now, not per batch
        return ""
    try:
        return inputs_mod.file_sha256(variant.path())
    except OSError:
        return ""  # unreadable: the unit fails when it runs, and is not recorded done


def _resolve_target(job: Job, run: MethodRun, source) -> tuple[object, str]:
    method = run.method
    if method.target == "none":
        return None, "none"
    if run.options.get("target") is not None:
        return run.options["target"], "option"
    if method.target == "explicit":
        raise InputError(f"{method.name} needs a target class (--target, or `target` in the job file's "
                         f"[{method.name}] table)")
    if job.target is not None:
        return job.target, "option"
    if job.labels is not None:
        label = inputs_mod.label_for(source, job.labels)
        if label is None:
            return "not in the labels file", "missing"
        if isinstance(label, str):
            return label, "missing"
        return label, "labels"
    if source.label_problem is not None:
        return source.label_problem, "missing"
    if source.label is not None:
        return source.label, "npz"
    return None, "top1"


# --------------------------------------------------------------------------- execution


class _Context:
    def __init__(self, job: Job):
        self.arrays, self.figures = job.arrays, job.figures


def _load_inputs(source, needs, reader, minimum_side):
    """Decodes one input and resizes it for every (size, crop) its methods need."""
    import jaxviz
    from jaxviz.images import resized_size

    image = reader(source)
    h, w = image.shape[:2]
    if min(h, w) < minimum_side:
        raise ImageError(f"{source.name}: {w}×{h} is too small (the model needs {minimum_side} px a side)")
    prepared = {}
    for size, crop in needs:
        if size and max(resized_size(h, w, size)) > MAX_UPSCALED_SIDE:
            raise ImageError(f"{source.name}: {w}×{h} is too elongated to resize to a {size} px short side")
        x = jaxviz.preprocess(image, size=size or None)[0]
        if crop:
            side = min(x.shape[:2])
            top, left = (x.shape[0] - side) // 2, (x.shape[1] - side) // 2
            x = x[top:top + side, left:left + side]
        prepared[(size, crop)] = np.ascontiguousarray(x)
    return prepared


def execute(job: Job) -> Summary:
    """Runs ``job``: resolves the weights and plans every unit before it touches the
    output folder, then holds the folder's lock while it computes and writes."""
    import jaxviz
    from jaxviz.models import weights as weights_mod

    weights = weights_mod.resolve_weights(job.arch, job.weights)
    job = dataclasses.replace(job, weights_sha256=weights.sha256)
    units, early_failures = plan(job)
    mine = set(sharding.share(job.all_sources(), job.process_index, job.process_count))
    share_classes = job.process_index == 0  # class visualisations run on the first process
    units = [u for u in units if (u.source in mine if u.source is not None else share_classes)]
    if job.process_count > 1:
        early_failures = [f for i, f in enumerate(early_failures) if i % job.process_count == job.process_index]
    problems = list(job.problems) if job.process_index == 0 else []

    manifest = MANIFEST if job.process_count == 1 else f"manifest.p{job.process_index}-of-{job.process_count}.jsonl"
    with OutputFolder(job.out, manifest, shared=job.process_count > 1) as out:
        out.remove_stale_temporaries({str(Path(job.runs[u.run].folder, u.key).parent) for u in units})
        out.wanted = (job.arrays, set(job.figures))
        records = {} if job.force else out.records()
        pending = [u for u in units if not out.is_done(job.runs[u.run].folder, u, records)]
        progress = Progress(len(units) + len(early_failures) + len(problems), quiet=job.quiet)
        progress.update(skipped=len(units) - len(pending))
        for name, message in problems + early_failures:
            progress.message(f"jaxviz: skipped {shown(name)}: {shown(message)}")
            _record_failure(out, progress, {"input": name, "status": "failed", "error": message})
        progress.update(failed=len(problems) + len(early_failures))

        if pending:
            model = jaxviz.load_model(job.arch, weights.path)
            devices = jaxviz_devices(job.devices)
            mesh = sharding.batch_mesh(devices) if len(devices) > 1 else None
            runner = _Runner(job, out, model, mesh, progress, len(pending))
            try:
                runner.run(pending)
                runner.finish()
            finally:
                runner.close()
        complete = True
        if job.process_count > 1:
            sharding.barrier("jaxviz-job-end")
            if job.process_index == 0:
                complete = _complete(job, out)
    summary = Summary(progress.done, progress.skipped, progress.failed,
                      time.perf_counter() - progress.start, progress.rate(), complete)
    if not job.quiet:
        progress.message(("" if job.process_count == 1 else f"process {job.process_index}: ") + progress.summary())
        if job.process_count > 1 and job.process_index == 0:
            progress.message("job complete: every output of every process is there" if complete
                             else "job incomplete: some outputs are missing (see failures above); re-run to resume")
    return summary


def _record_failure(out: OutputFolder, progress: Progress, entry: dict) -> None:
    """A failure is recorded when the manifest can be written; when it cannot (disk
    full, the folder made read-only mid-run) it is still reported, never a traceback."""
    try:
        out.record(entry)
    except OSError as err:
        progress.message(f"jaxviz: could not record the failure in the manifest: {err.strerror or err}")


def _complete(job: Job, out: OutputFolder) -> bool:
    units, _ = plan(job)
    records = out.records()
    return all(out.is_done(job.runs[u.run].folder, u, records) for u in units)


def jaxviz_devices(count: int):
    import jax

    devices = jax.local_devices()
    if count < 0 or count > len(devices):
        raise InputError(f"--devices must be in 0..{len(devices)} (0: all), got {count}")
    return devices[:count] if count else devices


class _Runner:
    def __init__(self, job: Job, out: OutputFolder, model, mesh, progress: Progress, pending: int):
        self.job, self.out, self.progress, self.mesh = job, out, progress, mesh
        self.model = sharding.replicate(model, mesh) if mesh is not None else model
        self.multiple = mesh.size if mesh is not None else 1
        self.batch = sharding.padded_size(min(job.batch_size, pending), self.multiple)
        self.ctx = _Context(job)
        self.writer = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="jaxviz-write")
        self.writes: list[concurrent.futures.Future] = []
        self.debug = bool(os.environ.get("JAXVIZ_DEBUG"))

    def finish(self) -> None:
        """Waits for every pending write."""
        concurrent.futures.wait(self.writes)
        self._drain(block=True)

    def close(self) -> None:
        # on an interruption pending writes are dropped; a running one finishes (atomic)
        self.writer.shutdown(wait=True, cancel_futures=True)
        self._drain(block=True)

    def run(self, pending: list[Unit]) -> None:
        classes = [u for u in pending if u.source is None]
        for r in sorted({u.run for u in classes}):
            batch = [(u, None) for u in classes if u.run == r]
            for i in range(0, len(batch), self.batch):
                self._flush(r, None, batch[i:i + self.batch])
        by_source: dict[inputs_mod.Source, list[Unit]] = {}
        for u in pending:
            if u.source is not None:
                by_source.setdefault(u.source, []).append(u)
        sources = list(by_source)
        reader = inputs_mod.ImageReader()
        from jaxviz.models import minimum_input_size

        minimum = minimum_input_size(self.job.arch)
        buckets: dict[tuple, list] = {}

        def load(source):
            needs = {(self.job.runs[u.run].size, self.job.runs[u.run].crop) for u in by_source[source]}
            return _load_inputs(source, needs, reader, minimum)

        for source, prepared, error in inputs_mod.prefetch(load, sources, workers=self.job.workers,
                                                           depth=2 * self.batch):
            units = by_source[source]
            if error is not None:
                if self.debug and not isinstance(error, JaxvizError):
                    raise error
                self._fail(units, _describe(error))
                continue
            for u in units:
                run = self.job.runs[u.run]
                x = prepared[(run.size, run.crop)]
                bucket_key = (u.run, getattr(u.variant, "label", None), x.shape)
                bucket = buckets.setdefault(bucket_key, [])
                bucket.append((u, x))
                if len(bucket) == self.batch:
                    self._flush(u.run, u.variant, buckets.pop(bucket_key))
        for key in list(buckets):
            entries = buckets.pop(key)
            self._flush(entries[0][0].run, entries[0][0].variant, entries)

    def _place(self, array):
        array = sharding.pad_batch(array, self.batch)
        return sharding.shard(array, self.mesh) if self.mesh is not None else array

    def _flush(self, r: int, variant, entries: list) -> None:
        run = self.job.runs[r]
        units = [u for u, _ in entries]
        _compiled.release_if_crowded()  # many image shapes → many compiled programs
        try:
            start = time.perf_counter()
            host_x = None if entries[0][1] is None else np.stack([x for _, x in entries])
            x = None if host_x is None else self._place(host_x)
            # the model's top-1 where no target was given (a mask: no class value is a sentinel)
            given = np.array([u.target is not None for u in units])
            targets = np.array([0 if u.target is None else u.target for u in units], np.int32)
            if not given.all():
                top1 = np.asarray(self.model(x)).argmax(axis=-1)[: len(units)]
                targets = np.where(given, targets, top1).astype(np.int32)
            seeds = np.array([inputs_mod.key_seed(u.key) for u in units], np.uint32)
            options = dict(run.options)
            if run.method.name == "fool" and self.mesh is not None and not options["slots"]:
                options["slots"] = self.batch  # one image per device at least
            arrays = run.method.compute(self.model, x, self._place(targets), self._place(seeds), options, variant)
            arrays = {k: np.asarray(v)[: len(units)] for k, v in arrays.items()}
            seconds = (time.perf_counter() - start) / len(units)
        except JaxvizError as err:
            self._fail(units, str(err))
            return
        except Exception as err:  # noqa: BLE001 - one failing batch must not end the job
            if self.debug:
                raise
            self._fail(units, _describe(err))
            return
        for i, u in enumerate(units):
            item = {k: v[i] for k, v in arrays.items()}
            xi = None if host_x is None else host_x[i]
            self.writes.append(self.writer.submit(self._save, run, u, xi, item, int(targets[i]), seconds))
        self._drain(block=False)

    def _save(self, run: MethodRun, unit: Unit, x, arrays, target: int, seconds: float) -> None:
        import jaxviz

        image = None if x is None else jaxviz.deprocess(x)
        files, extras = run.method.save(image, x, arrays, run.options, unit.variant, self.ctx)
        written = []
        for suffix, data in files.items():
            relative = f"{run.folder}/{unit.key}{suffix}"
            self.out.write(relative, data)
            written.append(relative)
        self.out.record({
            "input": unit.name, "key": unit.key, "method": run.method.name, "folder": run.folder,
            "input_sha256": unit.source.digest if unit.source is not None else None,
            "arch": self.job.arch, "weights_sha256": self.job.weights_sha256,
            "target": target, "target_from": unit.target_from, "options": run.options,
            "size": run.size, "crop": run.crop, "outputs": written, "seconds": round(seconds, 6),
            "arrays": self.job.arrays, "figures": sorted(self.job.figures),
            "status": "ok", "digest": unit.digest, **extras,
            **({"style": unit.variant.source} if unit.variant is not None else {}),
        })

    def _drain(self, block: bool) -> None:
        limit = 0 if block else 4 * self.batch
        while self.writes and (self.writes[0].done() or len(self.writes) > limit):
            future = self.writes.pop(0)
            try:
                future.result()
            except concurrent.futures.CancelledError:
                continue
            except Exception as err:  # noqa: BLE001 - e.g. disk full: this unit failed
                if self.debug:
                    raise
                self.progress.message(f"jaxviz: could not write an output: {shown(_describe(err))}")
                self.progress.update(failed=1)
                continue
            self.progress.update(done=1)

    def _fail(self, units: list[Unit], message: str) -> None:
        for u in units:
            self.progress.message(f"jaxviz: failed {shown(u.name)} ({self.job.runs[u.run].method.name}): "
                                  f"{shown(message)}")
            _record_failure(self.out, self.progress, {
                "input": u.name, "key": u.key, "method": self.job.runs[u.run].method.name,
                "folder": self.job.runs[u.run].folder, "status": "failed", "error": message})
        self.progress.update(failed=len(units))


def _describe(error: BaseException) -> str:
    return str(error) if isinstance(error, JaxvizError) else f"{type(error).__name__}: {error}"

