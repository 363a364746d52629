"""Profile jaxviz IG (W4) on SqueezeNet: op time by name from a perfetto trace."""
import glob, gzip, json, os, sys, time, collections
import numpy as np, jax, jax.numpy as jnp
import jaxviz
from benchmarks.run import course_images
model = jaxviz.load_model("squeezenet1_1")
X, y = course_images(5)
x = jaxviz.preprocess(X)
ibs = int(sys.argv[1]) if len(sys.argv) > 1 else 128
f = lambda: jaxviz.integrated_gradients(model, x, y, n_steps=50, internal_batch_size=ibs).block_until_ready()
f()
ts = []
for _ in range(3):
    t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
print("ibs", ibs, "times", [round(t, 3) for t in ts])
if len(sys.argv) > 2:
    d = "/tmp/s48/trace"
    os.system(f"rm -rf {d}")
    with jax.profiler.trace(d, create_perfetto_trace=True):
        f()
    path = glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[0]
    events = json.load(gzip.open(path))["traceEvents"]
    by = collections.Counter()
    for e in events:
        if e.get("ph") == "X" and "dur" in e:
            by[e["name"]] += e["dur"]
    tot = sum(v for k, v in by.items())
    for k, v in by.most_common(45):
        print(f"{v/1e3:9.1f} ms  {k[:110]}")
