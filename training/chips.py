"""How close our chips come to dlib's own, per landmark source and fit: `python -m training.chips`.

The ported network was trained on dlib's chips (`get_face_chip(image, five_landmarks, size=150, padding=0.25)`);
FaceSim cuts its chips from BlazeFace's keypoints instead. For each way of doing that, this prints the
agreement with dlib's own chip (cosine between the network's descriptors of the two chips of the same
image; LFW training people only) and LFW fold-7 pair accuracy at the best threshold (validation), with the
unchanged port. Nothing here chooses on test pairs.
"""

from __future__ import annotations

import argparse
import logging
import sys

import numpy as np

from . import data as D

log = logging.getLogger("training.chips")


def variants():
    """(name, Chip) for each landmark fit tried: all on BlazeFace's keypoints."""
    from facesim import dlib_resnet
    from facesim.align import Chip

    t = dlib_resnet.TEMPLATE
    return [
        ("4 points (eyes, nose, mouth), least-squares similarity [shipped]", Chip(150, t, "similarity")),
        ("4 points, eyes levelled, least-squares scale and shift", Chip(150, t, "level")),
        ("2 points (eyes only), exact similarity", Chip(150, t[:2], "similarity")),
        ("3 points (eyes, mouth), least-squares similarity", Chip(150, t[[0, 1, 3]], "similarity3")),
    ]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.chips", description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="weights", help="a dlib_resnet weights folder (default: shipped)")
    p.add_argument("--images", type=int, default=300, help="LFW training images for the agreement figure")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from facesim import NoFaceFoundError, load_image
    from facesim.align import _warp, chip_matrix, similarity_transform
    from facesim.detect import detect
    from facesim.model import Encoder

    from .dlib_port import dlib_chips
    from .metrics import best_threshold

    enc = Encoder.load(args.weights)
    split = D.protocol_split(D.LFW)
    people = D.list_people(D.LFW)
    rng = np.random.default_rng(0)
    train_files = [str(f) for n in sorted(split.train_people) for f in people[n]]
    files = [train_files[i] for i in rng.choice(len(train_files), size=args.images, replace=False)]
    val = [(str(D.LFW / q.a), str(D.LFW / q.b)) for q in split.validation_pairs]
    val_same = np.array([q.same for q in split.validation_pairs])

    def cut(path, chip):
        image = load_image(path)
        try:
            kp = detect(image)[0].keypoints
        except NoFaceFoundError:
            return None
        if chip.fit == "similarity3":  # eyes and mouth: keypoints 0, 1, 3
            m = similarity_transform(np.asarray(kp, np.float64)[[0, 1, 3]], np.asarray(chip.template) * chip.size)
        elif len(chip.template) == 2:
            m = similarity_transform(np.asarray(kp, np.float64)[:2], np.asarray(chip.template) * chip.size)
        else:
            m = chip_matrix(kp, chip)
        return _warp(image, m, chip.size)

    dlib_own = []  # dlib's own chip of each image (HOG + 5-point landmarks), None where HOG finds no face
    for f in files:
        c = dlib_chips([f])
        dlib_own.append(c[0] if len(c) else None)
    rows = []
    for name, chip in variants():
        ours, theirs = [], []
        for f, dc in zip(files, dlib_own):
            c = cut(f, chip)
            if c is not None and dc is not None:
                ours.append(c)
                theirs.append(dc)
        a, b = enc.embed_crops(np.stack(ours)), enc.embed_crops(np.stack(theirs))
        cos = (a * b).sum(1)
        cache = {}

        def emb(path):
            if path not in cache:
                c = cut(path, chip)
                cache[path] = enc.embed_crops(c[None])[0] if c is not None else None
            return cache[path]

        d = np.array([np.nan if emb(x) is None or emb(y) is None else float(np.linalg.norm(emb(x) - emb(y)))
                      for x, y in val])
        d = np.nan_to_num(d, nan=2.0)
        _, acc = best_threshold(d, val_same)
        rows.append((name, float(np.median(cos)), float(np.percentile(cos, 5)), len(cos), acc))
        log.info("%s: cosine median %.4f, 5th pct %.4f (%d images); fold 7 %.4f", *rows[-1])
    print("| landmarks and fit | cosine to dlib's own chip: median / 5th percentile | images | LFW fold 7 (best threshold) |")
    print("|---|---|---|---|")
    for name, med, p5, n, acc in rows:
        print(f"| {name} | {med:.4f} / {p5:.4f} | {n} | {acc:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
