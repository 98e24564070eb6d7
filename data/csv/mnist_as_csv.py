"""Writes MNIST training images as a CSV table with raw pixel values.

Usage: python3 mnist_as_csv.py IDX_FOLDER ROWS > table.csv

IDX_FOLDER holds train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz
(recipe's MNIST folder). The table has a `digit` column and 784 pixel
columns p0..p783 holding 0..255, as an exported table often does: fed to a
net without scaling (no --standardize), it is the setup bug that `recipe
diagnose` recognizes by the loss at initialization.
"""

import gzip
import struct
import sys

folder, rows = sys.argv[1], int(sys.argv[2])
with gzip.open(f"{folder}/train-images-idx3-ubyte.gz") as images:
    _, count, height, width = struct.unpack(">IIII", images.read(16))
    pixels = images.read(min(rows, count) * height * width)
with gzip.open(f"{folder}/train-labels-idx1-ubyte.gz") as labels:
    labels.read(8)
    digits = labels.read(min(rows, count))
size = height * width
print(",".join(["digit"] + [f"p{i}" for i in range(size)]))
for row, digit in enumerate(digits):
    print(",".join([str(digit)] + [str(p) for p in pixels[row * size:(row + 1) * size]]))
