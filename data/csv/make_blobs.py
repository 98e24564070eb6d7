"""Writes blobs.csv: a small synthetic table for recipe's CSV tests.

Three classes of 80 points each in four dimensions, Gaussian around the
centres below (standard deviation 1.0), with a label column of class names
placed third so that the label is not the last column. Python's own
random.Random(7) makes it reproducible: `python3 make_blobs.py` rewrites the
same file byte for byte.
"""

import random

CENTRES = {
    "north": (0.0, 3.0, 10.0, -1.0),
    "east": (3.0, 0.0, 10.0, 1.0),
    "west": (-3.0, 0.0, 10.0, 0.0),
}
ROWS_PER_CLASS = 80

rng = random.Random(7)
rows = []
for name, centre in CENTRES.items():
    for _ in range(ROWS_PER_CLASS):
        x = [c + rng.gauss(0.0, 1.0) for c in centre]
        rows.append((x, name))
rng.shuffle(rows)
with open("blobs.csv", "w", newline="") as out:
    out.write("x1,x2,species,x3,x4\n")
    for x, name in rows:
        out.write(f"{x[0]:.4f},{x[1]:.4f},{name},{x[2]:.4f},{x[3]:.4f}\n")
