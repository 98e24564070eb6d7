#!/usr/bin/env python3
"""A second, independent PyTorch harness for the three cases of `recipe
bench`: a training loop over real MNIST batches instead of one random batch
stepped again and again, to check that `pytorch_bench.py`'s figures do not
depend on its harness.

    python3 bench/pytorch_mnist_loop.py --threads 2

Reads the vendored `data/mnist/*.gz` (no numpy, no torchvision), scales the
pixels to [0, 1], and for each case: shuffles the 60,000 training images,
takes consecutive batches of the shuffled order (the gather is part of the
timed step, as a data loader's would be), 10 warm-up steps, then the median
of 5 repeats of 100 steps; inference over the 10,000 test images at batch
1000 without autograd, the median of 5 passes after one. The loss is read
back once per repeat, not per step. Prints the same JSON keys as
`pytorch_bench.py`, with "harness": "mnist loop".
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn

from pytorch_bench import CASES
from pytorch_mnist import mnist


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--case", default="abc", help="cases to run, e.g. a or ac")
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    train_x, train_y, test_x, _ = mnist()
    for name, make, make_optimizer, batch in CASES:
        if name[0].lower() not in args.case.lower():
            continue
        model = make()
        optimizer = make_optimizer(model.parameters(), False)
        loss_fn = nn.CrossEntropyLoss()
        order = torch.randperm(train_x.shape[0])
        batches = train_x.shape[0] // batch
        position = 0

        def train_steps(count):
            nonlocal position
            loss = None
            for _ in range(count):
                rows = order[(position % batches) * batch:(position % batches + 1) * batch]
                position += 1
                optimizer.zero_grad(set_to_none=True)
                loss = loss_fn(model(train_x[rows]), train_y[rows])
                loss.backward()
                optimizer.step()
            return loss.item()

        train_steps(10)
        rates = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            train_steps(args.steps)
            rates.append(args.steps * batch / (time.perf_counter() - started))

        model.eval()

        def infer():
            with torch.no_grad():
                for start in range(0, test_x.shape[0], 1000):
                    model(test_x[start:start + 1000]).sum().item()

        infer()
        infer_rates = []
        for _ in range(args.repeats):
            started = time.perf_counter()
            infer()
            infer_rates.append(test_x.shape[0] / (time.perf_counter() - started))
        print(json.dumps({
            "case": name,
            "harness": "mnist loop",
            "device": f"torch {torch.__version__} cpu, {torch.get_num_threads()} threads",
            "batch_size": batch,
            "train_samples_per_sec": round(statistics.median(rates)),
            "train_spread": [round(min(rates)), round(max(rates))],
            "infer_samples_per_sec": round(statistics.median(infer_rates)),
        }))


if __name__ == "__main__":
    main()
