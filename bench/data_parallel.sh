#!/usr/bin/env bash
# Data-parallel overhead on one machine (BENCHMARKS.md, "Several devices"):
# one device at batch 100, the CPU named twice at batch 50 each, and two
# `recipe worker` processes on 127.0.0.1 at batch 50 each, in interleaved
# rounds; prints the seconds of each epoch (history.csv's `seconds`).
# Needs a build with `--features remote`. Usage: bench/data_parallel.sh [ROUNDS]
set -euo pipefail
cd "$(dirname "$0")/.."
rounds="${1:-5}"
bin="${CARGO_TARGET_DIR:-target}/release/recipe"
out="$(mktemp -d)"
trap 'kill $(jobs -p) 2>/dev/null; rm -rf "$out"' EXIT

start_worker() {
  "$bin" worker --port 0 > "$out/$1.log" 2>/dev/null &
  until grep -q "ws://" "$out/$1.log" 2>/dev/null; do sleep 0.1; done
  grep -o "ws://[0-9.:]*" "$out/$1.log" | head -1
}
a="$(start_worker a)/0"
b="$(start_worker b)/0"

run() { # NAME ARGS...
  local name="$1"; shift
  "$bin" train --hidden 500,500,500 --epochs 2 --seed 1 "$@" \
    --out "$out/$name" --overwrite > /dev/null
  python3 - "$name" "$out/$name/history.csv" <<'PY'
import csv, sys
name, path = sys.argv[1], sys.argv[2]
for row in csv.DictReader(open(path)):
    print(f"{name},{row['epoch']},{float(row['seconds']):.2f}")
PY
}

echo "case,epoch,seconds"
for round in $(seq "$rounds"); do
  run one-device --batch-size 100
  run cpu-twice --batch-size 50 --devices cpu,cpu
  run two-workers --batch-size 50 --devices "$a,$b"
done
