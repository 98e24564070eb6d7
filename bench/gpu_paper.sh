#!/usr/bin/env bash
# `recipe reproduce paper` on a machine with a GPU (README, "The papers'
# records"), within the session `device` tool's limits: one command of at
# most 10 minutes, 15 minutes of device time in all, no network. The full
# profile takes hours even there, so this script runs it in pieces that the
# next lending continues:
#   1. the quick profile on wgpu, every protocol once (a smoke test of the
#      GPU path through every run, about a minute);
#   2. the full profile's runs named by ONLY (default: the plain Maxout
#      record, whose checkpoints are small enough to carry) and SEEDS
#      (default 1), with PATIENCE (`--patience`; default the protocol's),
#      until the budget ends; `reproduce paper` then stops with
#      its last complete epoch checkpointed, and a later invocation resumes
#      from there (not the 2x8192 net, `ONLY=8192`: its run folder, over
#      500 MB, is too large to carry between lendings);
#   3. packs that run folder, checkpoints included, into
#      $OUT/paper-runs.tgz: bring it back and keep it as
#      bench/paper-runs.tgz (ignored by git), and carry it to the next
#      lending, where this script unpacks it and goes on.
# The log prints each epoch's seconds: the basis for estimating the full
# profile's hours on that GPU (the README gives the 2-core CPU's).
#
# Build the wgpu binary here, as bench/gpu.sh's header says (bench/gpu-bin/
# recipe.gz), then run on the device, carry ["bench/gpu-bin", ".gl",
# "bench/paper-runs.tgz"] (the last only when a piece ran before), timeout_s
# 590:
#
#   for f in .gl/*.deb; do dpkg -x $f /; done; ldconfig
#   export VK_DRIVER_FILES=/usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json
#   BUDGET_S=540 bash bench/gpu_paper.sh
#
# DEVICE (default wgpu) runs it on another device: `DEVICE=cpu BUDGET_S=120
# RECIPE=target/release/recipe bash bench/gpu_paper.sh` tries the script
# itself on any machine.
set -uo pipefail
cd "$(dirname "$0")/.."
OUT="${OUT:-bench-gpu-paper}"
mkdir -p "$OUT"
started=$(date +%s)
budget="${BUDGET_S:-540}"
device="${DEVICE:-wgpu}"
only="${ONLY:-Maxout + dropout + max-norm}"
seeds="${SEEDS:-1}"
patience=()
if [ -n "${PATIENCE:-}" ]; then patience=(--patience "$PATIENCE"); fi
runs="$OUT/paper-runs"
stamp() { echo "[$(( $(date +%s) - started )) s] $*" | tee -a "$OUT/steps.log"; }
left() { echo $(( budget - ($(date +%s) - started) )); }

recipe="${RECIPE:-$PWD/bench/gpu-bin/recipe}"
if [ -z "${RECIPE:-}" ] && [ -f bench/gpu-bin/recipe.gz ]; then
  gunzip -c bench/gpu-bin/recipe.gz > "$recipe" && chmod +x "$recipe"
  stamp "carried binary unpacked"
fi
if [ ! -x "$recipe" ]; then
  stamp "no recipe binary at $recipe: build it as this script's header says"
  exit 1
fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp}"

mkdir -p "$runs"
if [ -f bench/paper-runs.tgz ]; then
  tar xzf bench/paper-runs.tgz -C "$runs"
  stamp "unpacked the earlier pieces: $(ls "$runs/paper" 2> /dev/null | tr '\n' ' ')"
fi

quick="$OUT/quick"
timeout 180 "$recipe" reproduce paper --profile quick --device "$device" --out "$quick" > "$OUT/quick.log" 2>&1
stamp "quick profile on $device ended with $?"

# Leave 30 s for packing; SIGINT first, so the run stops as on Ctrl-C.
piece=$(( $(left) - 30 ))
if [ "$piece" -gt 60 ]; then
  timeout -s INT -k 20 "$piece" "$recipe" reproduce paper --profile full --device "$device" \
    --only "$only" --seeds "$seeds" "${patience[@]}" --out "$runs" >> "$OUT/full.log" 2>&1
  stamp "full profile (--only '$only' --seeds $seeds ${patience[*]}) for ${piece} s ended with $? (124: the budget, to be continued)"
else
  stamp "no time left for the full profile's piece"
fi
grep -E "^epoch" "$OUT/full.log" | tail -n 3 | tee -a "$OUT/steps.log"

# The results of finished runs, and the folders to continue from (the
# trained weights' duplicates in safetensors left out).
tar czf "$OUT/paper-runs.tgz" --exclude='*.safetensors' -C "$runs" .
stamp "packed $(du -h "$OUT/paper-runs.tgz" | cut -f1) into $OUT/paper-runs.tgz"
ls -l "$OUT"
