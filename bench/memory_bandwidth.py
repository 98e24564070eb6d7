#!/usr/bin/env python3
"""The machine's memory bandwidth at the working sets of recipe's cases, for
BENCHMARKS.md's accounting of what a step moves.

    python3 bench/memory_bandwidth.py --threads 2

For arrays of 1 MB (three of them fit two cores' L2 caches) to 256 MB (past
most L3 caches): a triad `a = c + 0.5 * b` (two arrays read, one written)
and a copy, in PyTorch on the given threads; after 5 warm-up calls, the
median of 15 timings (each of enough calls to move about 200 MB), with the
slowest and fastest. Bytes counted are those read and written, without the
write-allocate reads of the destination.

torch is not part of recipe's setup; install it yourself to run this.
"""

import argparse
import statistics
import time

import torch


def measure(call, bytes_moved):
    calls = max(5, int(2e8 // bytes_moved))
    for _ in range(5):
        call()
    seconds = []
    for _ in range(15):
        start = time.perf_counter()
        for _ in range(calls):
            call()
        seconds.append((time.perf_counter() - start) / calls)
    rate = lambda s: bytes_moved / s / 1e9  # noqa: E731
    return rate(statistics.median(seconds)), rate(max(seconds)), rate(min(seconds))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    for megabytes in [1, 4, 12, 32, 256]:
        n = megabytes * (1 << 20) // 4
        a, b, c = torch.rand(n), torch.rand(n), torch.rand(n)
        for name, call, bytes_moved in [
            ("triad", lambda: torch.add(c, b, alpha=0.5, out=a), 3 * 4 * n),
            ("copy", lambda: a.copy_(b), 2 * 4 * n),
        ]:
            median, low, high = measure(call, bytes_moved)
            print(
                f"{name} {megabytes} MB per array, {args.threads} threads: "
                f"{median:.1f} GB/s ({low:.1f}-{high:.1f})"
            )


if __name__ == "__main__":
    main()
