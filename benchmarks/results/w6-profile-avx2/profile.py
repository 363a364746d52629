"""Profile jaxviz fooling (W6) on SqueezeNet: op time by fusion kind from a perfetto trace.

python benchmarks/results/w6-profile-avx2/profile.py [TRACE_DIR]  (repo root on PYTHONPATH,
JAXVIZ_WEIGHTS set)
"""
import collections, glob, gzip, json, os, re, sys, time

import jax
import numpy as np

import jaxviz
from benchmarks.run import course_images

model = jaxviz.load_model("squeezenet1_1")
X, _ = course_images(25)
x = jaxviz.preprocess(X)
target = np.full(len(x), 6)


def run():
    result = jaxviz.fooling_images(model, x, target, learning_rate=10.0)
    jax.block_until_ready(result.images)
    return result


result = run()
steps = int(np.asarray(result.iterations).sum())
times = []
for _ in range(3):
    start = time.perf_counter()
    run()
    times.append(time.perf_counter() - start)
print(f"times {[round(t, 3) for t in times]}; {steps} gradient steps, "
      f"{1000 * np.median(times) / steps:.2f} ms a step (median)")

trace_dir = sys.argv[1] if len(sys.argv) > 1 else "/tmp/w6-trace"
os.system(f"rm -rf {trace_dir}")
with jax.profiler.trace(trace_dir, create_perfetto_trace=True):
    run()
events = json.load(gzip.open(glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True)[0]))["traceEvents"]
by_kind = collections.Counter()
for event in events:
    if event.get("ph") == "X" and "dur" in event:
        # fusion names end in a number (select_bitcast_fusion.12): group by the kind
        by_kind[re.sub(r"[.\d]+$", "", event["name"])] += event["dur"]
for name, micros in by_kind.most_common(30):
    print(f"{micros / 1e3:9.1f} ms  {name[:100]}")
