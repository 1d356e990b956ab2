"""Save a PNG grid of one generated batch of triplets: `python -m training.plot_batch --out batch.png`.

Rows are (anchor, positive, negative) as the training generator makes them, augmentation included,
like the seed notebook's plot of `get_batch()`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

from . import data as D


def plot_triplets(faces, out: Path, *, n: int = 8, size: int = 64, seed: int = 0) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .augment import augment
    from .siamese import random_triplets

    rng = np.random.default_rng(seed)
    t = random_triplets(faces.labels, n, rng)
    fig, axes = plt.subplots(n, 3, figsize=(4.5, 1.5 * n))
    for row, triplet in enumerate(t):
        imgs = augment(faces.crops[triplet], rng, size)
        for col, (img, title) in enumerate(zip(imgs, ("anchor", "positive", "negative"))):
            ax = axes[row, col]
            ax.imshow(img.astype(np.uint8))
            ax.set_xticks([])
            ax.set_yticks([])
            if row == 0:
                ax.set_title(title)
        axes[row, 0].set_ylabel(faces.names[faces.labels[triplet[0]]][:14], fontsize=7)
    fig.tight_layout()
    fig.savefig(out, dpi=80)
    plt.close(fig)
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.plot_batch", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(D.LFW))
    p.add_argument("--out", default="batch.png")
    p.add_argument("--n", type=int, default=8, help="triplets (rows)")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    root = Path(args.data)
    if (root / "pairs.txt").is_file():
        faces = D.build_faceset(root, cache=D.CACHE_DIR / f"{root.name}_crops.npz").subset(D.protocol_split(root).train_people)
    else:
        faces = D.build_faceset(root)
    print(plot_triplets(faces, Path(args.out), n=args.n, seed=args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
