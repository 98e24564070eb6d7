"""The vendored MNIST (`data/mnist/*.gz`) as PyTorch tensors, for the
PyTorch scripts beside recipe's benchmarks (no numpy, no torchvision)."""

import gzip
import os

import torch

DATA = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")


def idx(name, header):
    """The payload of an IDX file after its `header` bytes, as uint8."""
    with gzip.open(os.path.join(DATA, name)) as f:
        raw = f.read()
    return torch.frombuffer(bytearray(raw[header:]), dtype=torch.uint8)


def mnist():
    """Training and test images scaled to [0, 1], [n, 784], with their labels."""
    train_x = idx("train-images-idx3-ubyte.gz", 16).view(-1, 784).float() / 255
    train_y = idx("train-labels-idx1-ubyte.gz", 8).long()
    test_x = idx("t10k-images-idx3-ubyte.gz", 16).view(-1, 784).float() / 255
    test_y = idx("t10k-labels-idx1-ubyte.gz", 8).long()
    return train_x, train_y, test_x, test_y
