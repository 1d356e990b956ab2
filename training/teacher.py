"""Teacher embeddings for distillation: `python -m training.teacher --out .cache/teacher.npz`.

The teacher is dlib's ResNet face encoder (public-domain model files from the `face-recognition-models`
package; its author reports LFW identities were kept out of its training data). It runs at training time
only, on training images only (LFW's training people and, with `--extra`, the unlabelled
`utkface-adults` faces), and is never shipped or needed by the app. With `--flip` each image is also
embedded mirrored, so the student's flipped views get their own target (twice the time; an existing file
for the same images keeps its plain views and only the mirrored ones are computed). Install it with
`pip install -r requirements-train.txt`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from . import data as D
from .progress import progress

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


def _embed_chunk(args: tuple[list[str], float, tuple[bool, bool]]) -> np.ndarray:
    """(N, V, 128): the teacher embedding of each image and/or of its mirror image, as `which` says."""
    from facesim import load_image

    paths, inset, which = args
    sp, rec, dlib = _load()
    out = []
    for p in paths:
        img = load_image(p)
        views = []
        for view in [v for v, wanted in zip((img, img[:, ::-1]), which) if wanted]:
            view = np.ascontiguousarray(view)
            h, w = view.shape[:2]
            # LFW deep-funneled faces are centred (inset 0.3); utkface crops are the face (inset 0.02):
            # the 5-point model refines the landmarks inside that box.
            box = dlib.rectangle(int(w * inset), int(h * inset), int(w * (1 - inset)), int(h * (1 - inset)))
            chip = dlib.get_face_chip(view, sp(view, box), size=150, padding=0.25)
            views.append(np.array(rec.compute_face_descriptor(chip), dtype=np.float32))
        out.append(np.stack(views))
    return np.stack(out)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.teacher", description=__doc__.split("\n")[0])
    p.add_argument("--data", default=str(D.LFW))
    p.add_argument("--extra", default=str(D.UTKFACE), help="unlabelled face crops to distil from ('' for none)")
    p.add_argument("--out", default=str(D.CACHE_DIR / "teacher.npz"))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--flip", action="store_true", help="also embed each image mirrored (2x the time)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    root = Path(args.data)
    split = D.protocol_split(root)
    people = D.list_people(root)
    D.check_no_leak(split.train_people, split.heldout_people)
    files = [str(f) for n in split.train_people for f in people[n]]  # training people only
    keys = [str(Path(f).relative_to(root)) for f in files]
    chunks = [(files[i : i + 64], 0.3) for i in range(0, len(files), 64)]
    if args.extra:
        extra = [str(f) for f in D.list_images(Path(args.extra))]
        keys += [D.extra_key(Path(f)) for f in extra]
        chunks += [(extra[i : i + 64], 0.02) for i in range(0, len(extra), 64)]
    out = Path(args.out)
    plain = _existing_plain_views(out, keys) if args.flip else None
    which = (plain is None, args.flip)
    parts = []
    with ProcessPoolExecutor(args.workers) as pool:
        jobs = [(paths, inset, which) for paths, inset in chunks]
        for e in progress(pool.map(_embed_chunk, jobs), total=len(jobs), desc="teacher (64 images a step)"):
            parts.append(e)
    emb = np.concatenate(parts)
    views = {"embeddings": plain if plain is not None else emb[:, 0]}
    if args.flip:
        views["embeddings_flip"] = emb[:, -1]
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(out) + ".tmp.npz")
    np.savez(tmp, paths=np.array(keys), **views)
    tmp.replace(out)
    log.info("wrote %s (%d images)", out, len(keys))
    return 0


def _existing_plain_views(path: Path, keys: list[str]) -> np.ndarray | None:
    """The plain-view embeddings already in `path` when it holds exactly `keys`, else None."""
    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as z:
        if z["paths"].tolist() != keys:
            return None
        log.info("keeping the plain views of %s; computing the mirrored ones", path)
        return z["embeddings"]


if __name__ == "__main__":
    sys.exit(main())
