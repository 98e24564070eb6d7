#!/usr/bin/env python3
"""The three cases of `recipe bench` in PyTorch, measured the same way, for a
side-by-side comparison on one machine.

    python3 bench/pytorch_bench.py                 # CPU, torch's default threads
    python3 bench/pytorch_bench.py --threads 2     # pin the thread count
    python3 bench/pytorch_bench.py --device cuda   # a GPU, if torch has one
    python3 bench/pytorch_bench.py --fused-adam    # case A with torch's fused Adam kernel

Prints one JSON object per case with the keys `recipe bench --json` prints:
case, device, batch_size, train_samples_per_sec, infer_samples_per_sec.
Random data, as in `recipe bench`: forward, cross-entropy, backward and
optimizer step per training step; inference at batch 1000 without autograd;
10 warm-up steps, then the median of 5 repeats of 20 steps.

torch is not part of recipe's setup; install it yourself to run this.
Run it back to back with `recipe bench` on a quiet machine: busy cores slow
OpenMP's spinning threads down by large factors.
"""

import argparse
import json
import statistics
import time

import torch
from torch import nn


class Maxout(nn.Module):
    """`units` outputs, each the max over `pieces` linear pieces."""

    def __init__(self, d_in, units, pieces):
        super().__init__()
        self.units, self.pieces = units, pieces
        self.linear = nn.Linear(d_in, units * pieces)

    def forward(self, x):
        z = self.linear(x).view(x.shape[0], self.units, self.pieces)
        return z.max(dim=2).values


def mlp(hidden, activation):
    layers, d_in = [], 784
    for width in hidden:
        layers += [nn.Linear(d_in, width), activation()]
        d_in = width
    layers.append(nn.Linear(d_in, 10))
    return nn.Sequential(*layers)


CASES = [
    ("A 784-512-512-10 relu, adam", lambda: mlp([512, 512], nn.ReLU),
     lambda p, fused: torch.optim.Adam(p, lr=1e-3, fused=fused or None), 128),
    ("B 784-500x9-10 sigmoid, sgd", lambda: mlp([500] * 9, nn.Sigmoid),
     lambda p, fused: torch.optim.SGD(p, lr=0.1), 100),
    ("C 784-240x2-10 maxout:5, sgd momentum",
     lambda: nn.Sequential(Maxout(784, 240, 5), Maxout(240, 240, 5), nn.Linear(240, 10)),
     lambda p, fused: torch.optim.SGD(p, lr=0.01, momentum=0.9), 100),
]


def median_rate(step, examples, warmup=10, repeats=5, steps=20, sync=lambda: None):
    for _ in range(warmup):
        step()
    sync()
    rates = []
    for _ in range(repeats):
        started = time.perf_counter()
        for _ in range(steps):
            step()
        sync()
        rates.append(steps * examples / (time.perf_counter() - started))
    return statistics.median(rates)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--batch-size", type=int, default=None,
                        help="training batch size for every case (as recipe bench --batch-size)")
    parser.add_argument("--case", default="abc", help="cases to run, e.g. a or ac")
    parser.add_argument("--fused-adam", action="store_true",
                        help="Adam(fused=True) for case A instead of torch's default Adam")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.manual_seed(0)
    for name, make, make_optimizer, batch in CASES:
        if name[0].lower() not in args.case.lower():
            continue
        batch = args.batch_size or batch
        model = make().to(device)
        optimizer = make_optimizer(model.parameters(), args.fused_adam)
        loss_fn = nn.CrossEntropyLoss()
        x = torch.rand(batch, 784, device=device)
        y = torch.arange(batch, device=device) % 10

        def train_step():
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(x), y)
            loss.backward()
            optimizer.step()
            loss.item()  # waits for the step, as recipe's bench does

        train = median_rate(train_step, batch, sync=sync)
        x_infer = torch.rand(1000, 784, device=device)
        model.eval()

        def infer():
            with torch.no_grad():
                model(x_infer).sum().item()

        infer_rate = median_rate(infer, 1000, warmup=1, steps=1, sync=sync)
        print(json.dumps({
            "case": name,
            "device": f"torch {torch.__version__} {device}, {torch.get_num_threads()} threads"
                      + (", fused adam" if args.fused_adam and name.startswith("A") else ""),
            "batch_size": batch,
            "train_samples_per_sec": round(train),
            "infer_samples_per_sec": round(infer_rate),
        }))


if __name__ == "__main__":
    main()
