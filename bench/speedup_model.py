#!/usr/bin/env python3
"""When do more devices pay? A model of data-parallel speed-up for the
benchmark cases (BENCHMARKS.md, "Several devices and machines").

Burn's multi-device strategy, which recipe uses, keeps the weights and the
optimizer on the first device: every step sends the weights to each other
device and brings each gradient back, 2 x 4 x P bytes per extra device, all
through the first device's link, while the devices compute in parallel:

    step(K) = compute(b) + 2 (K - 1) 4 P / bandwidth
    speed-up(K) = K compute(b) / step(K)       (against one device at batch b)

A ring all-reduce (Burn's DDP, on CUDA only in Burn 0.22.1) moves
2 (K - 1) / K x 4 P bytes per device instead, which no longer grows with K.

compute(b) = b x t, with t the measured compute time per image of one step
on one device. A faster device (a GPU) has a smaller t: b* grows by the
same factor (the tables give it for a device 100 times faster per image, an
assumption, not a measurement). More devices pay (speed-up(2) > 1) once compute(b) exceeds
the time to move 8 P bytes, i.e. from the batch b* = 8 P / (bandwidth x t).

The inputs below are measurements on the 2-core development machine (Intel
Xeon, Flex): `recipe bench --cases-only` training samples per second (the
fused-SGD figures of 2026-12-03, case A from the side-by-side table) and
bench/data_parallel.sh for the loopback workers. Run with no arguments; it
prints the markdown tables of BENCHMARKS.md.
"""

import sys

# Trainable parameters (weights and biases) of the benchmark cases.
CASES = {
    "A (784-512-512-10 ReLU, Adam)": (784 * 512 + 512) + (512 * 512 + 512) + (512 * 10 + 10),
    "B (784-[500]x9-10 sigmoid)": (784 * 500 + 500) + 8 * (500 * 500 + 500) + (500 * 10 + 10),
    "C (784-[240x5 Maxout]x2-10)": (784 * 1200 + 1200) + (240 * 1200 + 1200) + (240 * 10 + 10),
}

# Training images per second on one device (2 cores), measured.
CPU_SAMPLES_PER_SECOND = {
    "A (784-512-512-10 ReLU, Adam)": 40_000,
    "B (784-[500]x9-10 sigmoid)": 5_200,
    "C (784-[240x5 Maxout]x2-10)": 15_400,
}

# Links, bytes per second in one direction.
LINKS = {
    "loopback workers, as measured": None,  # filled from the measurement
    "10 Gb Ethernet": 1.25e9,
    "100 Gb Ethernet": 12.5e9,
    "PCIe 4.0 x16": 25e9,
    "NVLink 4 (H100/H200)": 450e9,
}


def loopback_bandwidth(one_device_s, two_workers_s, steps, parameters):
    """Effective bytes per second of the loopback workers: the extra seconds
    per step of two workers over one device, for 8 P bytes per step."""
    extra = (two_workers_s - one_device_s) / steps
    return 8 * parameters / extra


def speedup(k, compute, parameters, bandwidth):
    return k * compute / (compute + 2 * (k - 1) * 4 * parameters / bandwidth)


def main():
    # bench/data_parallel.sh medians (seconds per epoch of 500 steps,
    # 784-500-500-500-10, 898,510 parameters): one device, two workers.
    one, workers, steps, p = 3.16, 17.35, 500, 784 * 500 + 500 + 2 * (500 * 500 + 500) + 5010
    if len(sys.argv) == 3:
        one, workers = float(sys.argv[1]), float(sys.argv[2])
    LINKS["loopback workers, as measured"] = loopback_bandwidth(one, workers, steps, p)

    print("| case | parameters | bytes per step per extra device (8 P) | compute per image, 2 cores |")
    print("|---|---|---|---|")
    for case, params in CASES.items():
        t = 1 / CPU_SAMPLES_PER_SECOND[case]
        print(f"| {case} | {params:,} | {8 * params / 1e6:.1f} MB | {t * 1e6:.0f} us |")
    print()
    print("| link | case | b*: batch per device from which 2 devices pay, 2 cores "
          "| b* on a device 100x faster per image | speed-up of 2 / 4 / 8 devices at batch 100, "
          "2 cores | at batch 1000, 2 cores |")
    print("|---|---|---|---|---|---|")
    for link, bandwidth in LINKS.items():
        for case, params in CASES.items():
            t = 1 / CPU_SAMPLES_PER_SECOND[case]
            b_star = 8 * params / (bandwidth * t)
            at = lambda b: " / ".join(
                f"{speedup(k, b * t, params, bandwidth):.2f}" for k in (2, 4, 8)
            )
            print(
                f"| {link} ({bandwidth / 1e9:.2f} GB/s) | {case[0]} | {b_star:,.0f} "
                f"| {100 * b_star:,.0f} | {at(100)} | {at(1000)} |"
            )


if __name__ == "__main__":
    main()
