"""A/B: LRP with the stacked sign split vs term by term, one process, alternating (AOT-compiled)."""
import sys, time, numpy as np, jax
import jaxviz
from jaxviz.models import network, relevance
arch, composite, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
model = jaxviz.load_model("squeezenet1_1") if arch == "squeezenet1_1" else jaxviz.init_model(jax.random.key(0), arch)
data = np.load("/work/shared/data/imagenet_val_25.npz")
x = jaxviz.preprocess(data["X"][:n]); t = np.asarray(data["y"][:n])
f = lambda x: jaxviz.lrp(model, x, t, composite=composite)
original = relevance.affine
def unstacked(layer, rule, x, w, b, extra=(), nonnegative=False, stack=None):
    return original(layer, rule, x, w, b, extra, nonnegative, None)
t0 = time.time(); new = jax.jit(f).lower(x).compile(); print("compile new %.1f" % (time.time() - t0))
jax.clear_caches(); network.relevance.affine = unstacked
t0 = time.time(); old = jax.jit(f).lower(x).compile(); print("compile old %.1f" % (time.time() - t0))
network.relevance.affine = original
a, b = np.asarray(new(x)), np.asarray(old(x))
print("max rel diff", np.abs(a - b).max() / np.abs(b).max())
times = {"new": [], "old": []}
for i in range(11):
    for name, g in (("new", new), ("old", old)):
        t0 = time.perf_counter(); jax.block_until_ready(g(x)); times[name].append(time.perf_counter() - t0)
for k, v in times.items():
    print(k, "median %.1f ms" % (1e3 * np.median(v)), " ".join("%.0f" % (1e3 * u) for u in v))
