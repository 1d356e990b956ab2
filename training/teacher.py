"""Teacher embeddings for distillation: `python -m training.teacher --out .cache/teacher.npz`.

The teacher is dlib's ResNet face encoder (public-domain model files from the `face-recognition-models`
package; its author reports LFW identities were kept out of its training data). It runs at training time
only, on training images only, and is never shipped or needed by the app. Install it with
`pip install -r requirements-train.txt`.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from . import data as D

log = logging.getLogger("training.teacher")
_models = None


def _load():
    global _models
    if _models is None:
        import dlib
        import face_recognition_models as frm

        _models = (dlib.shape_predictor(frm.pose_predictor_five_point_model_location()),
                   dlib.face_recognition_model_v1(frm.face_recognition_model_location()), dlib)
    return _models


def _embed_chunk(paths: list[str]) -> np.ndarray:
    from facesim import load_image

    sp, rec, dlib = _load()
    out = []
    for p in paths:
        img = load_image(p)
        h, w = img.shape[:2]
        # Deep-funneled LFW is centred: the 5-point model refines the landmarks inside the central box.
        box = dlib.rectangle(int(w * 0.3), int(h * 0.3), int(w * 0.7), int(h * 0.7))
        chip = dlib.get_face_chip(img, sp(img, box), size=150, padding=0.25)
        out.append(np.array(rec.compute_face_descriptor(chip), dtype=np.float32))
    return np.stack(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.teacher", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(D.LFW))
    p.add_argument("--out", default=str(D.CACHE_DIR / "teacher.npz"))
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    root = Path(args.data)
    split = D.protocol_split(root)
    people = D.list_people(root)
    files = [f for n in split.train_people for f in people[n]]  # training people only
    D.check_no_leak(split.train_people, split.heldout_people)
    chunks = [[str(f) for f in files[i : i + 128]] for i in range(0, len(files), 128)]
    t0 = time.time()
    parts = []
    with ProcessPoolExecutor(args.workers) as pool:
        for k, e in enumerate(pool.map(_embed_chunk, chunks), 1):
            parts.append(e)
            log.info("teacher: %d/%d images (%.0f s)", min(k * 128, len(files)), len(files), time.time() - t0)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(out) + ".tmp.npz")
    np.savez(tmp, embeddings=np.concatenate(parts), paths=np.array([str(f.relative_to(root)) for f in files]))
    tmp.replace(out)
    log.info("wrote %s", out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
