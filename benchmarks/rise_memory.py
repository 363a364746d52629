"""RISE's peak memory against its number of masks: jaxviz.rise on 16 course images at 224
(SqueezeNet 1.1, pretrained), one process per mask count so that each peak is its own.

    PYTHONPATH=. python -m benchmarks.rise_memory 1000 8000 --out benchmarks/results/cams/w31-rise

The peak is the process's maximum resident set (``getrusage``); the baseline is the same
process after loading the model and images and compiling nothing.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

N_IMAGES = 16


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure(n_masks: int) -> dict:
    import jax
    import jaxviz
    from benchmarks.run import _targets_and_images

    model = jaxviz.load_model()
    x, y, _, _ = _targets_and_images(N_IMAGES)
    before = _peak_mib()
    start = time.perf_counter()
    saliency = jaxviz.rise(model, x, y, n_masks=n_masks, key=jax.random.key(0)).block_until_ready()
    seconds = time.perf_counter() - start
    return {"n_masks": n_masks, "images": N_IMAGES, "size": 224, "peak_rss_mib": round(_peak_mib(), 1),
            "rss_before_mib": round(before, 1), "seconds_with_compile": round(seconds, 1),
            "finite": bool(jax.numpy.isfinite(saliency).all())}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("n_masks", type=int, nargs="*")
    parser.add_argument("--out", type=Path)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(args.one)))
        return
    rows = []
    for n in args.n_masks:
        done = subprocess.run([sys.executable, "-m", "benchmarks.rise_memory", "--one", str(n)],
                              capture_output=True, text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "memory.json").write_text(json.dumps(rows, indent=2) + "\n")
        lines = ["| masks | images | peak RSS (MiB) | RSS before RISE (MiB) | time incl. compile (s) |",
                 "|---|---|---|---|---|"]
        lines += [f"| {r['n_masks']} | {r['images']} at {r['size']} | {r['peak_rss_mib']} | {r['rss_before_mib']} "
                  f"| {r['seconds_with_compile']} |" for r in rows]
        (args.out / "memory.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
