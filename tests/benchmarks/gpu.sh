#!/usr/bin/env bash
# Every GPU figure of bosun in one run, about 8 minutes on one H200; prints each benchmark's
# ratios and ends with one JSON line holding them all, keyed by figure.
#   landscape_bf16, landscape_fp32  tiles vs the forward-only limit vs the reference pipeline
#   dino_vit_s16                    the DINO step, ViT-S/16 at 224 px, 2x224 + 10x96 crops
#   dino_resnet50                   the DINO step, ResNet-50, same crops
#   ddp                             2 ranks, only where there are 2 GPUs
#   nvml                            the worker's NVML gauges, read once
#
#   bash tests/benchmarks/gpu.sh          # on the GPU box
#   bash tests/benchmarks/gpu.sh --dry    # every step at toy size on the CPU (make test runs this)
set -euo pipefail
cd "$(dirname "$0")/../.."
py=${PYTHON:-.venv/bin/python}
dry=0
[[ ${1:-} == --dry ]] && dry=1
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

gpus=0
if [[ $dry == 0 ]]; then
    gpus=$("$py" -c 'import torch; print(torch.cuda.device_count())')
    [[ $gpus -ge 1 ]] || { echo "no CUDA device: run with --dry for the CPU check" >&2; exit 2; }
    device=cuda
else
    device=cpu
fi

# step NAME COMMAND...: runs one benchmark, shows its output, keeps its last line (its JSON ratios).
step() {
    local name=$1
    shift
    echo "== $name: $*"
    local started=$SECONDS
    "$@" | tee "$out/$name.log"
    tail -n 1 "$out/$name.log" > "$out/$name.json"
    echo "   ($((SECONDS - started)) s)"
}

if [[ $dry == 1 ]]; then
    landscape=(--device cpu --model test_resnet --subset 16 --points 2 --tiles 2 --rounds 1
               --reference-points 1 --loader-workers 1 --batch-size 8)
    vit=(--device cpu --backbone vit_tiny_patch16_224 --size 32 --local-size 16 --local-crops 2 --batch 4
         --steps 1 --n-images 8 --workers 1 --out-dim 256)
    resnet=(--device cpu --backbone test_resnet --size 32 --local-size 16 --local-crops 2 --batch 4
            --steps 1 --n-images 8 --workers 1 --out-dim 256)
else
    landscape=(--device cuda --model resnet18 --subset 10000 --points 64 --tiles 4 --batch-size 2500
               --reference-points 4)
    vit=(--device cuda --backbone vit_small_patch16_224 --size 224 --local-size 96 --local-crops 10 --batch 64
         --steps 10 --n-images 640 --workers 12 --out-dim 65536)
    resnet=(--device cuda --backbone resnet50 --size 224 --local-size 96 --local-crops 10 --batch 64
            --steps 10 --n-images 640 --workers 12 --out-dim 60000)
fi

step landscape_fp32 "$py" tests/benchmarks/bench_landscape.py "${landscape[@]}"
if [[ $dry == 0 ]]; then
    step landscape_bf16 "$py" tests/benchmarks/bench_landscape.py "${landscape[@]}" --amp bf16
fi
step dino_vit_s16 "$py" tests/benchmarks/bench_pretrain.py "${vit[@]}"
step dino_resnet50 "$py" tests/benchmarks/bench_pretrain.py "${resnet[@]}"
if [[ $gpus -ge 2 ]]; then
    step ddp "$py" tests/benchmarks/bench_ddp.py --device cuda --world 2
fi
step nvml "$py" - <<'PY'
import json
import os

from prometheus_client import REGISTRY

from worker.gpu import GpuMetrics

gauges = GpuMetrics("gpu-bench", os.environ.get("CUDA_VISIBLE_DEVICES"))
gauges.update()
read = {f"{metric.name}{{gpu={sample.labels['gpu']}}}": sample.value
        for metric in REGISTRY.collect() if metric.name.startswith("bosun_gpu")
        for sample in metric.samples if sample.labels.get("worker") == "gpu-bench"}
print(f"{len(gauges.handles)} GPUs through NVML")
print(json.dumps(read))
PY

"$py" - "$out" <<'PY'
import json
import sys
from pathlib import Path

figures = {path.stem: json.loads(path.read_text()) for path in sorted(Path(sys.argv[1]).glob("*.json"))}
print(json.dumps(figures))
PY
