"""Planning a batch job: the runs, the inputs, and every unit (one method on one input)
with the identity that decides whether a re-run may skip it."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path

from jaxviz._io import file_sha256, shown
from jaxviz.cli import inputs as inputs_mod
from jaxviz.cli.registry import Method
from jaxviz.errors import InputError
from jaxviz.labels import class_names


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
    release_compiled: bool = True  # drop compiled programs when the process nears its memory-map limit

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
        if method.classes is not None:
            names = class_names()
            for c in method.classes(run.options):
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
        return file_sha256(variant.path())
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
