#!/usr/bin/env bash
# The GPU half of BENCHMARKS.md, prepared for one short run on a machine with
# an NVIDIA GPU (the session `device` tool: one command of at most 10 minutes,
# 15 minutes of device time in all, no network): the three cases on wgpu and
# on that machine's CPU, each in two rounds alternating with the same cases
# in the PyTorch it has (CUDA, CPU); the cases on wgpu also with Burn's
# kernels in place of recipe-cube's (RECIPE_KERNELS=burn: B's sigmoid, C's
# Maxout, the SGD update of both, A's Adam update); the hooks' cost on
# wgpu; and a data-parallel run on the GPU named twice (and on two GPUs if
# it has two).
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
#   # device run, carry ["bench/gpu-bin", ".gl"], timeout_s 590
#   # (the tool brings back at most 8 files, so pack the folder):
#   OUT=/tmp/gpu bash bench/gpu.sh; tar czf $OUT/gpu.tgz -C /tmp gpu
#
# Where the machine has no Vulkan loader, carry the loader packages as the
# device tool's README says (".gl") and unpack them before this script. The
# H200 run of 2026-12-04 was, in full:
#
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
#   OUT_BACK=$OUT; OUT=/tmp/gpu BUDGET_S=535 bash bench/gpu.sh
#   tar czf $OUT_BACK/gpu.tgz --exclude='*.bpk' --exclude='*.safetensors' -C /tmp gpu
#
# Each step is skipped when its time limit would end past ${BUDGET_S:-540} s
# after the start, so the script ends inside one device command.
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
budget="${BUDGET_S:-540}"
# fits SECONDS: whether a step limited to SECONDS ends inside the budget.
fits() {
  if [ $(( $(date +%s) - started + $1 )) -le "$budget" ]; then return 0; fi
  stamp "skipped a step of $1 s: past the ${budget} s budget"
  return 1
}

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

has_torch=false
python3 -c "import torch; assert torch.cuda.is_available()" 2> "$OUT/torch-probe.err" && has_torch=true
stamp "PyTorch with CUDA: $has_torch"
# torch_round NAME ARGS...: bench/pytorch_bench.py with ARGS into NAME.json.
torch_round() {
  $has_torch || return
  fits 60 && timeout 60 python3 bench/pytorch_bench.py "${@:2}" > "$OUT/$1.json" 2>> "$OUT/torch.err"
  stamp "$1 ended with $?"
}

if [ -x "$recipe" ]; then
  export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"
  # The first run pays for shader compilation and autotuning: warm up once.
  fits 120 && timeout 120 "$recipe" bench --device wgpu --cases-only --repeats 1 --steps 5 > "$OUT/warmup.txt" 2>&1
  stamp "wgpu warm-up ended with $?"
  # recipe on wgpu and PyTorch on CUDA in turn, twice, so that both see the
  # same machine; then the same cases with Burn's own kernels instead of
  # recipe-cube's fused sigmoid, Maxout, SGD and Adam updates.
  for round in 1 2; do
    fits 90 && timeout 90 "$recipe" bench --device wgpu --json --cases-only --repeats 5 > "$OUT/recipe-wgpu-r$round.json" 2>> "$OUT/recipe-wgpu.err"
    stamp "wgpu cases round $round ended with $?"
    torch_round "torch-cuda-r$round" --device cuda
  done
  fits 90 && RECIPE_KERNELS=burn timeout 90 "$recipe" bench --device wgpu --json --cases-only --repeats 5 > "$OUT/recipe-wgpu-burn-kernels.json" 2>> "$OUT/recipe-wgpu.err"
  stamp "wgpu cases with Burn's kernels ended with $?"
  fits 60 && timeout 60 "$recipe" bench --device wgpu --json --cases-only --case a --batch-size 4096 --repeats 5 > "$OUT/recipe-wgpu-b4096.json" 2>> "$OUT/recipe-wgpu.err"
  stamp "wgpu batch 4096 ended with $?"
  torch_round torch-cuda-b4096 --device cuda --case a --batch-size 4096
  for round in 1 2; do
    fits 60 && timeout 60 "$recipe" bench --device cpu --json --cases-only --repeats 5 > "$OUT/recipe-cpu-r$round.json" 2>> "$OUT/recipe-cpu.err"
    stamp "cpu cases round $round ended with $?"
    torch_round "torch-cpu-r$round" --device cpu
  done
  # The data path, recipe's loop against a bare Burn loop, and what the
  # hooks (penalties, max-norm) cost per step, on the GPU.
  fits 120 && timeout 120 "$recipe" bench --device wgpu --json --case a --repeats 21 --steps 10 > "$OUT/recipe-wgpu-hooks.json" 2> "$OUT/recipe-wgpu-hooks.err"
  stamp "wgpu hooks ended with $?"
  # Data parallel (README, "Several devices"): one epoch of MNIST on one GPU
  # at batch 1024, then the same steps on two devices at 512 each: the GPU
  # named twice (the strategy's overhead), and two GPUs where there are two.
  dp() { fits 120 || return; timeout 120 "$recipe" train --hidden 1024,1024 --epochs 2 --out "$OUT/dp-$1" --overwrite "${@:2}" > "$OUT/dp-$1.txt" 2>&1; stamp "data parallel $1 ended with $?"; }
  dp one --device wgpu --batch-size 1024
  dp same-twice --devices wgpu,wgpu --batch-size 512
  if [ "$(nvidia-smi -L 2>/dev/null | wc -l)" -ge 2 ]; then
    dp two-gpus --devices wgpu:0,wgpu:1 --batch-size 512
  fi
else
  torch_round torch-cuda-r1 --device cuda
  torch_round torch-cpu-r1 --device cpu
fi
ls -l "$OUT"
