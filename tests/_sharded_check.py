"""Run in a subprocess with XLA_FLAGS=--xla_force_host_platform_device_count=4: each method
single-device and sharded over the 4 devices, for batch sizes 5 (every method) and 6 (saliency),
and on 5 images guided GradCAM on a random ResNet-18 and saliency on an own model (SqueezeNet
as a plain function); prints JSON."""

from __future__ import annotations

import json
import sys

import jax
import numpy as np

import jaxviz
from jaxviz import scoring, sharding


def main() -> None:
    assert len(jax.local_devices()) == 4, jax.local_devices()
    squeezenet = jaxviz.load_model()
    with np.load(sys.argv[1], allow_pickle=False) as data:
        X, y = data["X"], data["y"]
    x_all = jaxviz.preprocess(X[:6], size=48)
    mesh = sharding.batch_mesh()
    methods = {
        "saliency": lambda m, x, t: jaxviz.saliency(m, x, t),
        "guided_gradcam": lambda m, x, t: jaxviz.guided_gradcam(m, x, t),
        "integrated_gradients": lambda m, x, t: jaxviz.integrated_gradients(m, x, t, n_steps=4),
        "fooling": lambda m, x, t: jaxviz.fooling_images(m, x, t, learning_rate=10.0, max_iter=3, slots=8).images,
    }
    resnet = jaxviz.init_model(jax.random.key(0), "resnet18")
    own = jaxviz.from_function(lambda p, v: squeezenet.apply(p, v), squeezenet.params, input_size=48)
    runs = [(squeezenet, "", 5, list(methods)), (squeezenet, "", 6, ["saliency"]),  # 5 and 6: not multiples of 4
            (resnet, "resnet18 ", 5, ["guided_gradcam"]), (own, "own ", 5, ["saliency"])]
    report = {}
    for model, label, n, names in runs:
        x, t = x_all[:n], y[:n]
        for name in names:
            fn = methods[name]
            target = np.full(n, 6) if name == "fooling" else t
            single = np.asarray(fn(model, x, target))
            sharded = sharding.map_batch(fn, model, x, target, mesh=mesh)
            placement = len(sharded.sharding.device_set) if hasattr(sharded, "sharding") else 0
            sharded = np.asarray(sharded)
            scale = float(np.abs(single).max())
            report[f"{label}{name}/{n}"] = {
                "shape_ok": sharded.shape == single.shape,
                "max_rel": float(np.abs(sharded - single).max() / scale) if scale else 0.0,
                "devices": placement,
            }
    repeated = sharding.shard(np.repeat(x_all[:2], 4, axis=0), mesh)  # one image's targets over the devices
    report["repeats"] = {"on one device": scoring.find_repeats(np.asarray(repeated), y[:8]) is not None,
                         "sharded": scoring.find_repeats(repeated, y[:8]) is not None}
    print(json.dumps(report))


if __name__ == "__main__":
    main()
