#!/usr/bin/env bash
# The GPU half of BENCHMARKS.md, prepared for one short run on a machine with
# an NVIDIA GPU (the session `device` tool: one command of at most 10 minutes,
# 15 minutes of device time in all, no network): the three cases on wgpu and
# on that machine's CPU (the cases on wgpu also with Burn's kernels in
# place of recipe-cube's, RECIPE_KERNELS=burn: B's sigmoid, C's Maxout, the
# SGD update of both, A's Adam update), the same cases in the
# PyTorch it has, on CUDA, and
# a data-parallel run on the GPU named twice (and on two GPUs if it has two).
# Writes JSON lines and logs to ${OUT:-bench-gpu}/.
#
# Building Burn with wgpu takes about 20 minutes on 2 cores, too long for the
# device's budget, so build the binary here and carry it there, compressed
# (the carry limit is 64 MiB; stripped and gzipped it is about 18 MB):
#
#   cargo build --release --features wgpu --bin recipe
#   mkdir -p bench/gpu-bin
#   strip -o bench/gpu-bin/recipe "${CARGO_TARGET_DIR:-target}/release/recipe"
#   gzip -9f bench/gpu-bin/recipe
#   # device run, carry ["bench/gpu-bin"], timeout_s 580:
#   OUT=$OUT bash bench/gpu.sh
#
# Without bench/gpu-bin/recipe.gz it builds on the machine (with a time limit).
# `--features cuda` is not attempted: its build script downloads LLVM, and
# the device machine reaches no network.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-gpu}"
mkdir -p "$OUT"
started=$(date +%s)
stamp() { echo "[$(( $(date +%s) - started )) s] $*" | tee -a "$OUT/steps.log"; }

nvidia-smi > "$OUT/nvidia-smi.txt" 2>&1
nproc > "$OUT/nproc.txt"
(command -v vulkaninfo && vulkaninfo --summary) > "$OUT/vulkaninfo.txt" 2>&1

recipe="$PWD/bench/gpu-bin/recipe"
if [ -f bench/gpu-bin/recipe.gz ]; then
  gunzip -c bench/gpu-bin/recipe.gz > "$recipe" && chmod +x "$recipe"
  stamp "carried binary unpacked"
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/recipe/target-gpu}"
  stamp "building --features wgpu (no carried binary)"
  timeout 420 cargo build --release --features wgpu --bin recipe > "$OUT/build.log" 2>&1
  recipe="$CARGO_TARGET_DIR/release/recipe"
  stamp "build ended with $?"
fi

if [ -x "$recipe" ]; then
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  # The first run pays for shader compilation and autotuning: warm up once.
  timeout 120 "$recipe" bench --device wgpu --cases-only --repeats 1 --steps 5 > "$OUT/warmup.txt" 2>&1
  stamp "wgpu warm-up ended with $?"
  timeout 150 "$recipe" bench --device wgpu --json --cases-only --repeats 5 > "$OUT/recipe-wgpu.json" 2> "$OUT/recipe-wgpu.err"
  stamp "wgpu cases ended with $?"
  # The same cases with Burn's own kernels instead of recipe-cube's fused
  # sigmoid, Maxout, SGD and Adam updates.
  RECIPE_KERNELS=burn timeout 150 "$recipe" bench --device wgpu --json --cases-only --repeats 5 > "$OUT/recipe-wgpu-burn-kernels.json" 2>> "$OUT/recipe-wgpu.err"
  stamp "wgpu cases with Burn's kernels ended with $?"
  timeout 90 "$recipe" bench --device wgpu --json --cases-only --case a --batch-size 4096 --repeats 5 > "$OUT/recipe-wgpu-b4096.json" 2>> "$OUT/recipe-wgpu.err"
  stamp "wgpu batch 4096 ended with $?"
  timeout 60 "$recipe" bench --device cpu --json --cases-only --repeats 5 > "$OUT/recipe-cpu.json" 2> "$OUT/recipe-cpu.err"
  stamp "cpu cases ended with $?"
  # Data parallel (README, "Several devices"): one epoch of MNIST on one GPU
  # at batch 1024, then the same steps on two devices at 512 each: the GPU
  # named twice (the strategy's overhead), and two GPUs where there are two.
  dp() { timeout 120 "$recipe" train --hidden 1024,1024 --epochs 2 --out "$OUT/dp-$1" --overwrite "${@:2}" > "$OUT/dp-$1.txt" 2>&1; stamp "data parallel $1 ended with $?"; }
  dp one --device wgpu --batch-size 1024
  dp same-twice --devices wgpu,wgpu --batch-size 512
  if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ]; then
    dp two-gpus --devices wgpu:0,wgpu:1 --batch-size 512
  fi
fi

if python3 -c "import torch; assert torch.cuda.is_available()" 2> "$OUT/torch-probe.err"; then
  timeout 90 python3 bench/pytorch_bench.py --device cuda > "$OUT/torch-cuda.json" 2> "$OUT/torch-cuda.err"
  timeout 45 python3 bench/pytorch_bench.py --device cuda --case a --batch-size 4096 > "$OUT/torch-cuda-b4096.json" 2>> "$OUT/torch-cuda.err"
  timeout 60 python3 bench/pytorch_bench.py --device cpu > "$OUT/torch-cpu.json" 2> "$OUT/torch-cpu.err"
  stamp "pytorch ended"
else
  stamp "no PyTorch with CUDA on this machine"
fi
ls -l "$OUT"
