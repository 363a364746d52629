#!/usr/bin/env bash
# The GPU side of the benchmarks as bounded runs (a lent GPU machine's time is short): each
# phase has its own time limit, so a slow phase costs only itself, and the harness writes
# its report after every workload, so a phase cut short keeps what it measured.
#
#   benchmarks/gpu.sh OUT_DIR [PHASE ...]     (default: every phase, in this order)
#
# Phases: core (#20's and #14's workloads), cams (#17's), captum (#16's), metrics (#18's
# deletion/insertion, infidelity and sensitivity_max at 16 images), quantus (#18's MPRT and
# faithfulness correlation, whose reference needs Quantus and its dependencies), parity (float32
# and float64 on the GPU against PyTorch on the CPU, at JAX's default float32 precision),
# parity-highest (the same with JAX_DEFAULT_MATMUL_PRECISION=highest), conv (today's
# convolution derivatives, chosen on the CPU, against XLA's own: benchmarks/conv_library.py),
# compiled (W1 and W2 beside torch.compile, whose compilation took over 80 s on the H200),
# overhead (where a public call's time goes beside its compiled program: benchmarks/call_overhead.py).
# Run from the repository root, with JAXVIZ_SHARED pointing at the data and JAX and PyTorch
# both seeing the GPU (the references then run on it too: benchmarks/run.py --torch-device).
# On 2026-12-04 the H200 machine took 15-30 s per workload (compiles included).  A lent
# machine's 15 minutes hold about two calls of phases; benchmarks/results/gpu-h200/notes.md
# says how to carry the references and the data there, and how to split the phases.
set -u
out=${1:?usage: benchmarks/gpu.sh OUT_DIR [PHASE ...]}
shift
phases=${*:-core cams captum metrics quantus parity parity-highest conv overhead compiled}
mkdir -p "$out"
export PYTHONUNBUFFERED=1 PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH}
python=${PYTHON:-python3}

phase() {  # phase SECONDS NAME COMMAND...: COMMAND's output in OUT_DIR/NAME.log
    local limit=$1 name=$2 start=$SECONDS
    shift 2
    timeout "$limit" "$@" > "$out/$name.log" 2>&1
    echo "$name: exit $? after $((SECONDS - start)) s (limit $limit s)" | tee -a "$out/phases.txt"
}

nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv > "$out/gpu.txt" 2>&1
"$python" -c "import jax, torch; print('jax', jax.__version__, jax.devices(), '| torch', torch.__version__, torch.cuda.get_device_name())" >> "$out/gpu.txt" 2>&1

for name in $phases; do
    case $name in
        core) phase 300 core "$python" -m benchmarks.run --no-torch-compile \
                  --only W2,W3,W4,W5,W6,W7,W8,W9,W10,W11,W12 --out "$out/core" ;;
        cams) phase 120 cams "$python" -m benchmarks.run --only W13,W14,W16,W31,W72 --out "$out/cams" ;;
        captum) phase 100 captum "$python" -m benchmarks.run --only W17,W18,W19,W23,W24 --out "$out/captum" ;;
        metrics) phase 300 metrics "$python" -m benchmarks.run --only W39,W40,W41,W42,W43,W44 --out "$out/metrics" ;;
        quantus) phase 300 quantus "$python" -m benchmarks.run --only W45,W46,W49,W50 --out "$out/quantus" ;;
        parity) phase 150 parity "$python" -m benchmarks.parity_report --skip-models --skip-timing ;;
        parity-highest) JAX_DEFAULT_MATMUL_PRECISION=highest \
                  phase 150 parity-highest "$python" -m benchmarks.parity_report --skip-models --skip-timing ;;
        conv) phase 150 conv bash -c "'$python' -m benchmarks.conv_library ab squeezenet1_1 25 3 &&
                  '$python' -m benchmarks.conv_library ab resnet50 16 3" ;;
        overhead) phase 150 overhead bash -c "'$python' -m benchmarks.call_overhead squeezenet1_1 25 224 &&
                  '$python' -m benchmarks.call_overhead resnet18 16 224" ;;
        compiled) phase 240 compiled "$python" -m benchmarks.run --only W1,W2 --out "$out/compiled" ;;
        *) echo "unknown phase $name (core cams captum metrics quantus parity parity-highest conv overhead compiled)" >&2; exit 2 ;;
    esac
done
