"""Why: occlusion maps of which face regions pull two faces together and which push them apart."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .api import Weights, _closest, _pick
from .image import ImageSource
from .model import load_encoder

__all__ = ["Explanation", "explain", "occlusion_map", "PATCH", "STRIDE"]

#: Side of the grey square slid over the encoder's input, and its step, in crop pixels.
PATCH = 16
STRIDE = 8


@dataclass(frozen=True)
class Explanation:
    """Which regions of two faces made their distance what it is.

    Attributes:
        distance: distance between the two faces (as `verify` measures it).
        crop_a, crop_b: the aligned RGB uint8 crops (CROP_SIZE, CROP_SIZE, 3) that were compared.
        heatmap_a, heatmap_b: float32 (CROP_SIZE, CROP_SIZE): how much the distance grows when that region
            of the face is hidden. Positive: the region looks alike in both faces (it pulls them together);
            negative: it differs (it pushes them apart). Zero outside what the encoder sees.
        face_a, face_b: the faces used.
    """

    distance: float
    crop_a: np.ndarray = field(repr=False, compare=False)
    crop_b: np.ndarray = field(repr=False, compare=False)
    heatmap_a: np.ndarray = field(repr=False, compare=False)
    heatmap_b: np.ndarray = field(repr=False, compare=False)
    face_a: object = field(repr=False, compare=False, default=None)
    face_b: object = field(repr=False, compare=False, default=None)


def explain(image_a: ImageSource, image_b: ImageSource, *, weights: Weights = None,
            face_index: tuple[int, int | None] = (0, None), names: tuple[str, str] = ("photo A", "photo B")) -> Explanation:
    """Occlusion sensitivity of a pair: hide each region of one face in turn and see how the distance moves.

    A grey square (`PATCH` pixels, every `STRIDE` pixels) covers part of face A, all covered versions are
    embedded in one batch, and the change in distance to face B is recorded at every pixel the square
    covered (averaged); then the same for face B: 49 covered crops per face, embedded without the flip
    test-time augmentation (half the cost; measured: one explanation in under a second on 2 cores).

    Args:
        image_a, image_b: file paths, image bytes, or RGB uint8 arrays (H, W, 3).
        weights: the model (see `facesim.embed`).
        face_index: which face of each photo to use (0 = the clearest; None for photo B: its face closest to
            photo A's, as `compare` chooses it).
        names: how error messages name the two photos.

    Returns:
        An `Explanation` (deterministic for the same photos and weights).

    Raises:
        FaceSimError: a photo is not a usable image or holds no face (the message starts with its name).
    """
    encoder = load_encoder(weights)
    chip = encoder.config.chip
    (fa, _), (_, faces_b) = _pick(image_a, names[0], face_index[0], chip), _pick(image_b, names[1], face_index[1], chip)
    e = encoder.embed_crops(np.stack([fa.crop] + [f.crop for f in faces_b]))
    k, distance = _closest(e[0], e[1:], face_index[1])
    fb = faces_b[k]
    # The maps' own baseline is without the flip; without flip averaging it is the embedding already made.
    plain = (encoder.embed_crops(np.stack([fa.crop, fb.crop]), flip=False) if encoder.config.flip_tta
             else e[[0, 1 + k]])
    base = float(np.linalg.norm(plain[0] - plain[1]))
    heat_a = occlusion_map(encoder, fa.crop, plain[1], base)
    heat_b = occlusion_map(encoder, fb.crop, plain[0], base)
    return Explanation(distance=distance, crop_a=fa.crop, crop_b=fb.crop, heatmap_a=heat_a, heatmap_b=heat_b,
                       face_a=fa, face_b=fb)


def occlusion_map(encoder, crop: np.ndarray, other: np.ndarray, distance: float) -> np.ndarray:
    """Per pixel of `crop`, the mean change of its distance to embedding `other` when that pixel is hidden."""
    size, inp = encoder.config.crop_size, encoder.config.input_size
    off = (size - inp) // 2
    patch, stride = round(PATCH * inp / 64), round(STRIDE * inp / 64)  # the same 7x7 grid at any input size
    starts = list(range(off, off + inp - patch + 1, stride))
    fill = crop[off : off + inp, off : off + inp].reshape(-1, 3).mean(0).astype(np.uint8)
    batch = np.repeat(crop[None], len(starts) ** 2, axis=0)
    boxes = [(y, x) for y in starts for x in starts]
    for k, (y, x) in enumerate(boxes):
        batch[k, y : y + patch, x : x + patch] = fill
    emb = encoder.embed_crops(batch, flip=False)
    delta = np.linalg.norm(emb - other[None], axis=1) - distance
    total = np.zeros((size, size), np.float64)
    count = np.zeros((size, size), np.float64)
    for (y, x), dv in zip(boxes, delta):
        total[y : y + patch, x : x + patch] += dv
        count[y : y + patch, x : x + patch] += 1
    return np.where(count > 0, total / np.maximum(count, 1), 0.0).astype(np.float32)
