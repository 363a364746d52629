"""W20's SLIC segments: their bounding boxes, and the region plans (#20's receptive-field saving,
jaxviz/attribution/_regions.py) feature ablation could use with one crop for every segment.
Output of 2026-12-05 in region_plan_for_superpixels.txt."""
import time, numpy as np, jax, jaxviz
from jaxviz.attribution import _regions
from benchmarks.run import course_images
X, _ = course_images(4)
mask = jaxviz.masks.segments(X, method="slic", n_segments=50)
rows0, rows1, cols0, cols1 = [], [], [], []
for m in mask:
    for f in range(m.max() + 1):
        r, c = np.nonzero(m == f)
        rows0.append(r.min()); rows1.append(r.max() + 1); cols0.append(c.min()); cols1.append(c.max() + 1)
h = np.array(rows1) - np.array(rows0); w = np.array(cols1) - np.array(cols0)
print("segments", len(h), "bbox h pct50/90/max", np.percentile(h, [50, 90, 100]), "w", np.percentile(w, [50, 90, 100]))
model = jaxviz.load_model("squeezenet1_1")
for q in (100, 90):
    sel = (h <= np.percentile(h, q)) & (w <= np.percentile(w, q))
    rows = (np.array(rows0)[sel], np.array(rows1)[sel]); cols = (np.array(cols0)[sel], np.array(cols1)[sel])
    t = time.perf_counter(); opts = _regions.options(model, (224, 224, 3), rows, cols); t1 = time.perf_counter()
    for o in opts[:4]: print(q, o.layer, o.rows.crop, o.cols.crop, o.rows.block, o.cols.block, round(o.cost, 3))
    print("options s", round(t1 - t, 2))
    t = time.perf_counter(); p = _regions.plan(model, (224, 224, 3), rows, cols); print("plan s", round(time.perf_counter() - t, 2), p and p.layer)
    t = time.perf_counter(); p = _regions.plan(model, (224, 224, 3), rows, cols); print("plan again s", round(time.perf_counter() - t, 2), p and p.layer)
