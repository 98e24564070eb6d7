#!/usr/bin/env bash
# The GPU half of BENCHMARKS.md, prepared for a machine with an NVIDIA GPU:
# the three cases on wgpu (Vulkan) and cuda, and the same cases in PyTorch.
# Writes JSON lines to ${OUT:-bench-gpu}/. Not yet run: no session has had a
# GPU. Note: `--features cuda` needs internet at build time (Burn's CUDA
# backend downloads LLVM in a build script); without it only wgpu is built.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-gpu}"
mkdir -p "$OUT"
nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recipe/target-gpu}"

features=wgpu,vulkan
if timeout 1500 cargo build --release --features wgpu,vulkan,cuda --bin recipe > "$OUT/build-cuda.log" 2>&1; then
  features=wgpu,vulkan,cuda
else
  timeout 1500 cargo build --release --features "$features" --bin recipe > "$OUT/build-wgpu.log" 2>&1
fi
recipe="$CARGO_TARGET_DIR/release/recipe"
for device in ${features//,/ }; do
  # The first run pays for autotuning and shader compilation: warm up once.
  timeout 600 "$recipe" bench --device "$device" --cases-only --repeats 1 --steps 5 > /dev/null 2>&1
  timeout 600 "$recipe" bench --device "$device" --json --cases-only > "$OUT/recipe-$device.json" 2> "$OUT/recipe-$device.err"
  timeout 600 "$recipe" bench --device "$device" --json --cases-only --case a --batch-size 4096 > "$OUT/recipe-$device-b4096.json" 2>> "$OUT/recipe-$device.err"
done
if python3 -c "import torch; assert torch.cuda.is_available()" 2> /dev/null; then
  python3 bench/pytorch_bench.py --device cuda > "$OUT/torch-cuda.json" 2> "$OUT/torch-cuda.err"
  python3 bench/pytorch_bench.py --device cuda --case a --batch-size 4096 > "$OUT/torch-cuda-b4096.json" 2>> "$OUT/torch-cuda.err"
fi
ls -l "$OUT"
