#!/usr/bin/env python3
"""Goodfellow et al. 2013's permutation-invariant MNIST Maxout protocol in
PyTorch, written from pylearn2's `mnist_pi.yaml` and
`mnist_pi_continued.yaml`: a second implementation of the protocol that
`recipe reproduce paper --only 'Maxout + dropout + max-norm'` runs, to tell
a fault of recipe's from what the protocol gives.

    python3 bench/pytorch_maxout_paper.py --seed 1 --threads 1 --out DIR

Phase 1 trains 784-[240 x 5]x2-10 Maxout on the first 50,000 training
images: weights U(+-0.005), biases 0, batch 100 in a fresh shuffled order
each epoch, SGD with pylearn2's momentum (inc = m * inc - lr * grad), the
learning rate 0.1 / 1.000004^update (at least 1e-6), momentum 0.5 rising
linearly to 0.7 at epoch 250 (MomentumAdjustor start 1, saturate 250, set
once per epoch), every weight column's norm clipped to 1.9365 after each
update, dropout keeping 80% of the pixels unscaled and 50% of the hidden
units scaled by 2. It keeps the epoch of the lowest validation error (last
10,000 training images, no dropout; strictly lower) and stops after 100
epochs without one (MonitorBased, prop_decrease 0, N 100; epoch 0, the
initial weights, counts as monitored, as in pylearn2). The target of the
retraining is the kept model's dropout objective on the 50,000, measured
after its epoch (pylearn2's monitor's last `train_objective` in the saved
model). Phase 2 continues from the kept model on all 60,000 images with the
momentum of its last epoch fixed and the learning rate decaying on from its
value, until the dropout objective on the last 10,000 falls to the target
(MatchChannel, checked after every epoch and before the first).

Writes `history.csv` (one row per epoch of both phases) and `summary.json`
(best epoch, validation error, the test errors before and after the
retraining, seconds) under --out. Reads the vendored `data/mnist/*.gz`.
"""

import argparse
import csv
import json
import os
import time

import torch

from pytorch_mnist import mnist

UNITS, PIECES, CLASSES = 240, 5, 10
MAX_COL_NORM = 1.9365
BATCH = 100


def uniform(shape, generator):
    return (torch.rand(shape, generator=generator) * 2 - 1) * 0.005


class Maxout:
    """Weights in pylearn2's layout: (inputs, outputs), a column per output."""

    def __init__(self, generator):
        self.params = [
            uniform((784, UNITS * PIECES), generator), torch.zeros(UNITS * PIECES),
            uniform((UNITS, UNITS * PIECES), generator), torch.zeros(UNITS * PIECES),
            uniform((UNITS, CLASSES), generator), torch.zeros(CLASSES),
        ]
        self.increments = [torch.zeros_like(p) for p in self.params]
        for p in self.params:
            p.requires_grad_(True)

    def logits(self, x, masks=None):
        """[batch, 784] -> [batch, 10]; `masks` draws dropout from a generator."""
        w0, b0, w1, b1, w2, b2 = self.params
        if masks is not None:
            x = x * (torch.rand(x.shape, generator=masks) < 0.8)
        h = (x @ w0 + b0).view(-1, UNITS, PIECES).amax(-1)
        if masks is not None:
            h = h * (torch.rand(h.shape, generator=masks) < 0.5) * 2.0
        h = (h @ w1 + b1).view(-1, UNITS, PIECES).amax(-1)
        if masks is not None:
            h = h * (torch.rand(h.shape, generator=masks) < 0.5) * 2.0
        return h @ w2 + b2

    def step(self, lr, momentum):
        with torch.no_grad():
            for p, inc in zip(self.params, self.increments):
                inc.mul_(momentum).add_(p.grad, alpha=-lr)
                p.add_(inc)
                p.grad = None
                if p.dim() == 2:
                    norms = p.norm(dim=0)
                    p.mul_(norms.clamp(max=MAX_COL_NORM) / (1e-7 + norms))

    def snapshot(self):
        return [p.detach().clone() for p in self.params]

    def restore(self, values):
        with torch.no_grad():
            for p, v in zip(self.params, values):
                p.copy_(v)


def error(model, x, y):
    with torch.no_grad():
        wrong = sum(
            (model.logits(x[i:i + 1000]).argmax(1) != y[i:i + 1000]).sum().item()
            for i in range(0, x.shape[0], 1000)
        )
    return wrong / x.shape[0]


def dropout_objective(model, x, y, masks):
    """The mean dropout cost over `x`, one thinned net per image."""
    with torch.no_grad():
        total = sum(
            torch.nn.functional.cross_entropy(
                model.logits(x[i:i + 1000], masks), y[i:i + 1000], reduction="sum"
            ).item()
            for i in range(0, x.shape[0], 1000)
        )
    return total / x.shape[0]


class Schedule:
    """pylearn2's ExponentialDecay (per update) and MomentumAdjustor (per epoch)."""

    def __init__(self, updates=0):
        self.updates = updates
        self.momentum = 0.5

    @property
    def lr(self):
        return max(0.1 / 1.000004 ** self.updates, 1e-6)

    def after_update(self):
        self.updates += 1

    def after_epoch(self, epoch):
        alpha = min(max(epoch / 249, 0.0), 1.0)
        self.momentum = 0.5 * (1 - alpha) + 0.7 * alpha


def train_epoch(model, x, y, schedule, shuffle, masks, fixed_momentum=None):
    order = torch.randperm(x.shape[0], generator=shuffle)
    total = 0.0
    for i in range(0, x.shape[0], BATCH):
        rows = order[i:i + BATCH]
        loss = torch.nn.functional.cross_entropy(model.logits(x[rows], masks), y[rows])
        loss.backward()
        model.step(schedule.lr, fixed_momentum if fixed_momentum is not None else schedule.momentum)
        schedule.after_update()
        total += loss.item()
    return total / (x.shape[0] // BATCH)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, required=True)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--patience", type=int, default=100)
    parser.add_argument("--max-epochs", type=int, default=1000)
    parser.add_argument("--out", required=True)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    train_x, train_y, test_x, test_y = mnist()
    fit_x, fit_y = train_x[:50000], train_y[:50000]
    valid_x, valid_y = train_x[50000:], train_y[50000:]

    init, shuffle, masks, monitor_masks = (
        torch.Generator().manual_seed(args.seed * 4 + k) for k in range(4)
    )
    model = Maxout(init)
    schedule = Schedule()
    history = open(os.path.join(args.out, "history.csv"), "w", newline="")
    rows = csv.writer(history)
    rows.writerow(["phase", "epoch", "train_loss", "valid_error", "lr", "momentum", "seconds"])

    started = time.time()
    best = {"epoch": 0, "valid_error": error(model, valid_x, valid_y)}
    kept = model.snapshot()
    target = None
    since_best = 0
    epoch = 0
    while since_best < args.patience and epoch < args.max_epochs:
        epoch += 1
        tick = time.time()
        loss = train_epoch(model, fit_x, fit_y, schedule, shuffle, masks)
        momentum_used = schedule.momentum
        schedule.after_epoch(epoch)
        valid = error(model, valid_x, valid_y)
        if valid < best["valid_error"]:
            best = {"epoch": epoch, "valid_error": valid,
                    "momentum": momentum_used, "updates": schedule.updates}
            kept = model.snapshot()
            target = dropout_objective(model, fit_x, fit_y, monitor_masks)
            since_best = 0
        else:
            since_best += 1
        rows.writerow(["1", epoch, f"{loss:.6f}", f"{valid:.4f}", f"{schedule.lr:.6f}",
                       f"{momentum_used:.4f}", f"{time.time() - tick:.2f}"])
        history.flush()
    phase_one_seconds = time.time() - started
    model.restore(kept)
    phase_one_test = error(model, test_x, test_y)
    print(f"seed {args.seed}: phase 1 kept epoch {best['epoch']} (valid {best['valid_error']:.4f}), "
          f"stopped {epoch}, test {phase_one_test:.4f}, target {target:.5f}", flush=True)

    # Phase 2: mnist_pi_continued.yaml.
    model.increments = [torch.zeros_like(p) for p in model.params]
    retrain = Schedule(updates=best["updates"])
    retrain_epochs = 0
    objective = dropout_objective(model, valid_x, valid_y, monitor_masks)
    while objective > target and retrain_epochs < args.max_epochs:
        retrain_epochs += 1
        tick = time.time()
        loss = train_epoch(model, train_x, train_y, retrain, shuffle, masks, best["momentum"])
        objective = dropout_objective(model, valid_x, valid_y, monitor_masks)
        rows.writerow(["2", retrain_epochs, f"{loss:.6f}", f"{objective:.6f}",
                       f"{retrain.lr:.6f}", f"{best['momentum']:.4f}", f"{time.time() - tick:.2f}"])
        history.flush()
    history.close()
    summary = {
        "seed": args.seed,
        "torch": torch.__version__,
        "threads": args.threads,
        "best_epoch": best["epoch"],
        "stopped_epoch": epoch,
        "best_valid_error": best["valid_error"],
        "phase_one_test_error": phase_one_test,
        "retrain_target": target,
        "retrain_epochs": retrain_epochs,
        "test_error": error(model, test_x, test_y),
        "phase_one_seconds": round(phase_one_seconds, 1),
        "seconds": round(time.time() - started, 1),
    }
    with open(os.path.join(args.out, "summary.json"), "w") as f:
        json.dump(summary, f, indent=2)
    print(json.dumps(summary), flush=True)


if __name__ == "__main__":
    main()
