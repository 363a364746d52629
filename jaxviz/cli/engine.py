"""Runs a batch job: methods × inputs → files, resumable, atomic, sharded across devices.

The model and each method's compiled function are built once per job.  Images are
decoded and resized in background threads, grouped by (method, shape) into batches of
``batch_size`` and the last batch padded, so one shape compiles once.  Planning
(:mod:`jaxviz.cli.plan`) decides what each unit is and whether it is done; writing
(:mod:`jaxviz.cli.outputs`) makes every file atomically and records a unit only after
its files exist.  One bad input fails alone; the rest of the job completes.
"""

from __future__ import annotations

import concurrent.futures
import dataclasses
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import numpy as np

import jaxviz
from jaxviz import _compiled, sharding
from jaxviz._io import shown
from jaxviz.cli import inputs as inputs_mod
from jaxviz.cli.outputs import MANIFEST, OutputFolder
from jaxviz.cli.plan import Job, MethodRun, Unit, plan
from jaxviz.cli.progress import Progress
from jaxviz.cli.registry import call_with
from jaxviz.errors import ImageError, InputError, JaxvizError
from jaxviz.images import resized_size
from jaxviz.models import minimum_input_size
from jaxviz.models import weights as weights_mod

MAX_UPSCALED_SIDE = 4096  # a 1×1000 strip resized to a 224 short side would be 224×224000


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


# --------------------------------------------------------------------------- execution


def _load_inputs(source, needs, reader, minimum_side):
    """Decodes one input and resizes it for every (size, crop) its methods need."""
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
        records = {} if job.force else out.records()
        pending = [u for u in units if not _is_done(job, out, u, records)]
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
        if job.process_index == 0:  # after every process's records are in
            for run in job.runs:
                written = None if run.method.finish is None else run.method.finish(out, run.folder)
                if written is not None and not job.quiet:
                    progress.message(f"jaxviz: wrote {shown(str(written))}")
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
    return all(_is_done(job, out, u, records) for u in units)


def _is_done(job: Job, out: OutputFolder, unit: Unit, records: dict) -> bool:
    return out.is_done(job.runs[unit.run].folder, unit, records, job.arrays, job.figures)


def jaxviz_devices(count: int):
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
        if self.job.release_compiled:
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
            if self.mesh is not None:
                options = run.method.on_devices(options, self.batch)
            arrays = call_with(run.method.compute, model=self.model, x=x, target=self._place(targets),
                               seeds=self._place(seeds), options=options, variant=variant)
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
        image = None if x is None else jaxviz.deprocess(x)
        files, extras = call_with(run.method.save, image=image, x=x, arrays=arrays, options=run.options,
                                  variant=unit.variant, arrays_format=self.job.arrays, wanted_figures=self.job.figures,
                                  model=self.model)
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

