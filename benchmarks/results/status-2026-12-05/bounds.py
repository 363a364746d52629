"""How fast the network work of each missed #17 / #18 workload would have to run for its target.

For each workload: the time its target leaves (the fastest reference's time / the target, less
any host work that both sides do alike), the network arithmetic jaxviz cannot avoid in it (the
forward passes or input gradients it evaluates), and the rate that arithmetic would need,
against this machine's float32 matmul peak as the harness measures it.  FLOPs are 2 × the
multiply-adds of the convolutions and linear layers of torchvision's modules at 224; where
jaxviz scores the target's logit alone (ScoreCAM, the gradient methods, faithfulness
correlation, infidelity), the classifier's other 999 outputs are not counted (SqueezeNet's
classifier is a 1×1 convolution over 13×13 positions, a quarter of its arithmetic); RISE and
deletion / insertion need the softmax, so the whole head.  An input gradient is counted as
its forward pass and its backward pass to the input (the same multiply-adds again; no
weight gradients).  The times are the recorded runs named beside each.
Output of 2026-12-05 in bounds.md."""
import torch
import torchvision

PEAK = 552.1  # GFLOP/s, float32 matmul, measured by benchmarks.run in w34/ (551.1 in w37/)


def forward_gflop(name: str, target_only: bool = False) -> float:
    """GFLOP of one forward pass at 224; ``target_only``: one of the classifier's 1000 outputs."""
    model = getattr(torchvision.models, name)()
    total = 0

    def count(module, _inputs, output):
        nonlocal total
        if isinstance(module, torch.nn.Conv2d):
            flops = 2 * output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]
            outputs = module.out_channels
        elif isinstance(module, torch.nn.Linear):
            flops, outputs = 2 * output.numel() * module.in_features, module.out_features
        else:
            return
        total += flops // outputs if target_only and outputs == 1000 else flops

    hooks = [m.register_forward_hook(count) for m in model.modules()]
    with torch.no_grad():
        model(torch.zeros(1, 3, 224, 224))
    for hook in hooks:
        hook.remove()
    return total / 1e9


FORWARD = {name: forward_gflop(name) for name in ("squeezenet1_1", "resnet18", "resnet50")}
TARGET_ONLY = {name: forward_gflop(name, target_only=True) for name in FORWARD}
SQ, R18, R50 = (FORWARD[n] for n in ("squeezenet1_1", "resnet18", "resnet50"))  # the whole head
SQ1, R181, R501 = (TARGET_ONLY[n] for n in ("squeezenet1_1", "resnet18", "resnet50"))  # the target's logit

# XRAI's host work: the Felzenszwalb segments (scikit-image on both sides), 1.08 s for W36's 8 images
# (jaxviz.attribution.xrai.segment_labels, 2026-12-05, best of 3 on this machine); W38's 2 images a quarter.
# workload, target, fastest reference s and jaxviz s (medians of the run named last), passes, GFLOP a pass, host s both sides spend alike, source
ROWS = (
    ("W13 ScoreCAM, SqueezeNet, 8", 5, 24.21, 7.63, 3503, SQ1, 0, "w13-default-batch/ (3503 of 4096 masks not zero)"),
    ("W31 RISE, 1000 masks, SqueezeNet, 4", 5, 26.945, 11.866, 4000, SQ, 0, "../reference-sweeps-avx512/w31/"),
    ("W34 Guided IG, SqueezeNet, 4", 5, 18.31, 4.575, 800, 2 * SQ1, 0, "w34/"),
    ("W37 Guided IG, ResNet-50, 2", 5, 47.26, 21.07, 400, 2 * R501, 0, "w37/"),
    ("W36 XRAI, SqueezeNet, 8", 5, 32.81, 10.517, 1600, 2 * SQ1, 1.08, "../reference-sweeps-avx512/w36-pair-sweep/"),
    ("W38 XRAI, ResNet-50, 2", 5, 35.047, 22.931, 400, 2 * R501, 0.27, "../reference-sweeps-avx512/w38-pair-sweep/"),
    ("W25 deletion + insertion, SqueezeNet, 8", 3, 24.114, 11.578, 3600, SQ, 0, "../reference-sweeps-avx512/w25/"),
    ("W39 deletion + insertion, SqueezeNet, 16", 3, 43.891, 21.371, 7200, SQ, 0, "../reference-sweeps-avx512/w39/"),
    ("W40 deletion + insertion, ResNet-18, 16", 3, 97.223, 99.718, 7200, R18, 0, "../reference-sweeps-avx512/w40/"),
    ("W27 sensitivity_max, SqueezeNet, 8", 3, 1.825, 1.289, 168, 2 * SQ1, 0, "../reference-sweeps-avx512/w27-noise-draws/"),
    ("W42 infidelity, ResNet-18, 16", 3, 17.52, 10.25, 816, R181, 0, "../reference-sweeps-avx512/w42-noise-draws/"),
    ("W44 sensitivity_max, ResNet-18, 16", 3, 8.873, 9.331, 336, 2 * R181, 0, "../reference-sweeps-avx512/w44/"),
    ("W28 MPRT (saliency), SqueezeNet, 8", 10, 5.049, 2.017, 8 * 27, 2 * SQ1, 0, "../reference-sweeps-avx512/w28-int-ranks/"),
    ("W45 MPRT (saliency), SqueezeNet, 16", 10, 10.124, 3.99, 16 * 27, 2 * SQ1, 0, "../reference-sweeps-avx512/w45-int-ranks/"),
    ("W46 MPRT (saliency), ResNet-18, 16", 10, 26.304, 20.764, 16 * 42, 2 * R181, 0, "../reference-sweeps-avx512/w46-int-ranks/"),
    ("W49 faithfulness correlation, SqueezeNet, 16", 10, 14.415, 4.438, 16 * 101, SQ1, 0,
     "../reference-sweeps-avx512/w49-floyd-sweep/"),
    ("W50 faithfulness correlation, ResNet-18, 16", 10, 23.439, 21.813, 16 * 101, R181, 0,
     "../reference-sweeps-avx512/w50-floyd-sweep/"),
)

if __name__ == "__main__":
    print("forward GFLOP at 224, whole head / target's logit alone:",
          {k: (round(v, 3), round(TARGET_ONLY[k], 3)) for k, v in FORWARD.items()})
    print("| workload | target | fastest reference s | time the target leaves s | network work GFLOP "
          "| rate needed GFLOP/s (share of peak) | jaxviz now GFLOP/s (share) | source |")
    print("|---|---|---|---|---|---|---|---|")
    for name, target, reference, ours, passes, gflop, host, source in ROWS:
        left = reference / target - host
        work = passes * gflop
        need = work / left
        print(f"| {name} | {target}× | {reference:.2f} | {reference / target:.2f}"
              f"{f' − {host} host' if host else ''} | {work:.0f} | {need:.0f} ({100 * need / PEAK:.0f} %) "
              f"| {work / ours:.0f} ({100 * work / ours / PEAK:.0f} %) | `{source}` |")
