#!/usr/bin/env python3
"""The table of `bench/pytorch_maxout_paper.py`'s seeds, beside recipe's runs
of the same protocol.

    python3 bench/pytorch_maxout_report.py RUNS_DIR [--recipe RESULTS_JSON] > results.md

Reads `RUNS_DIR/seed*/summary.json` (the seeds that finished both phases)
and, from a `recipe reproduce paper` report, the rows of 'Maxout + dropout
+ max-norm' (default: docs/paper/maxout-target/results.json, recipe's five
seeds of the paper's protocol).
"""

import argparse
import glob
import json
import os
import statistics
import sys

RUN = "Maxout + dropout + max-norm"


def spread(values):
    mean = statistics.mean(values)
    sd = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{mean:.3f}% (sd {sd:.3f}; {min(values):.2f} to {max(values):.2f}%)"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs")
    here = os.path.dirname(__file__)
    parser.add_argument(
        "--recipe",
        default=os.path.join(here, "..", "docs", "paper", "maxout-target", "results.json"),
    )
    args = parser.parse_args()
    seeds = sorted(
        (json.load(open(path)) for path in glob.glob(os.path.join(args.runs, "seed*", "summary.json"))),
        key=lambda s: s["seed"],
    )
    if not seeds:
        raise SystemExit(f"no seed*/summary.json under {args.runs}")
    print("# Goodfellow et al. 2013's Maxout protocol in PyTorch\n")
    print(f"`bench/pytorch_maxout_paper.py --seed N --threads 1` (torch {seeds[0]['torch']}), "
          "one thread per seed; test error on the 10,000 test images, percent. "
          "Its seeds draw other random numbers than recipe's seeds of the same "
          "number: compare the spreads, not seed by seed. This table: "
          f"`python3 {' '.join(sys.argv)}`.\n")
    print("| seed | best epoch | stopped | validation error | phase 1's test error "
          "| retraining target | retraining epochs | test error | seconds |")
    print("|---|---|---|---|---|---|---|---|---|")
    for s in seeds:
        print(f"| {s['seed']} | {s['best_epoch']} | {s['stopped_epoch']} "
              f"| {100 * s['best_valid_error']:.2f}% | {100 * s['phase_one_test_error']:.2f}% "
              f"| {s['retrain_target']:.4f} | {s['retrain_epochs']} "
              f"| **{100 * s['test_error']:.2f}%** | {s['seconds']:,.0f} |")
    print()
    print(f"- test error after the retraining: {spread([100 * s['test_error'] for s in seeds])}")
    print(f"- phase 1's model: {spread([100 * s['phase_one_test_error'] for s in seeds])}")
    print(f"- validation error of the epoch kept: {spread([100 * s['best_valid_error'] for s in seeds])}")
    lowest = min(s["best_valid_error"] for s in seeds)
    picks = [s for s in seeds if s["best_valid_error"] == lowest]
    print(f"- picked by the validation error ({100 * lowest:.2f}%): "
          + ", ".join(f"seed {s['seed']}, {100 * s['test_error']:.2f}%" for s in picks))
    rows = [r for r in json.load(open(args.recipe)) if r["name"] == RUN]
    if rows:
        print(f"- recipe, the same protocol ({os.path.relpath(args.recipe)}, seeds "
              f"{', '.join(str(r['seed']) for r in rows)}): test error "
              f"{spread([r['test_error'] for r in rows])}, validation error "
              f"{spread([r['valid_error'] for r in rows])}")
    print("- the paper: 0.94%")


if __name__ == "__main__":
    main()
