"""Training-time augmentation that imitates real photos, applied to aligned face crops (numpy/OpenCV)."""

from __future__ import annotations

import cv2
import numpy as np


def augment(crops: np.ndarray, rng: np.random.Generator, size: int, *, real: bool = True,
            flips: np.ndarray | None = None) -> np.ndarray:
    """Random framing, flip, and (with `real`) the faults of real photos, on uint8 crops.

    Framing: scale 0.88-1.12, shift up to 4 px, rotation up to 10 degrees (the detector's keypoints are
    never exact). Real-photo faults, each now and then: a small face (downscaled to 14-40 px and back),
    blur, JPEG at quality 25-90, noise, colour cast, brightness, contrast and gamma, grey, and a
    rectangle hiding part of the face (a hand, a microphone, sunglasses).

    Args:
        crops: (N, C, C, 3) uint8 RGB aligned crops (C = facesim.align.CROP_SIZE).
        rng: the generator that makes a run reproducible.
        size: output side (the encoder's input size; its centre crop is what inference sees).
        real: add the real-photo faults (framing and flip alone otherwise).
        flips: which crops to mirror (bool, N); drawn at random (half) when None.

    Returns:
        (N, size, size, 3) float32 in [0, 255].
    """
    n, c = len(crops), crops.shape[1]
    if flips is None:
        flips = rng.random(n) < 0.5
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        scale = rng.uniform(0.88, 1.12)
        angle = rng.uniform(-10, 10)
        shift = rng.uniform(-4, 4, size=2)
        m = cv2.getRotationMatrix2D((c / 2, c / 2), angle, scale)
        m[:, 2] += size / 2 - c / 2 + shift
        img = cv2.warpAffine(crops[i], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if flips[i]:
            img = img[:, ::-1]
        if real:
            img = _photo_faults(np.ascontiguousarray(img), rng)
        out[i] = img
    b = rng.uniform(-25, 25, size=(n, 1, 1, 1))
    k = rng.uniform(0.75, 1.25, size=(n, 1, 1, 1))
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = (out - mean) * k + mean + b
    if real:
        out *= rng.uniform(0.9, 1.1, size=(n, 1, 1, 3))  # colour cast (white balance)
        gamma = rng.uniform(0.7, 1.4, size=(n, 1, 1, 1))
        out = 255.0 * (np.clip(out, 0, 255) / 255.0) ** gamma
    grey = rng.random(n) < 0.1
    if grey.any():
        out[grey] = out[grey].mean(axis=3, keepdims=True)
    # The colour steps compute in float64; the encoder's input is float32 either way.
    return np.clip(out, 0, 255).astype(np.float32)


def _photo_faults(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    size = img.shape[0]
    r = rng.random(6)
    if r[0] < 0.25:  # a small face in the photo: few pixels, upscaled by the aligner
        side = int(rng.integers(14, 41))
        img = cv2.resize(cv2.resize(img, (side, side), interpolation=cv2.INTER_AREA), (size, size),
                         interpolation=cv2.INTER_LINEAR)
    if r[1] < 0.2:  # out of focus or moving
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.6, 1.8))
    if r[2] < 0.15:  # sensor noise in low light
        img = np.clip(img + rng.normal(0, rng.uniform(3, 12), img.shape), 0, 255).astype(np.uint8)
    if r[3] < 0.15:  # something in front of the face
        h = int(size * rng.uniform(0.2, 0.45))
        w = int(size * rng.uniform(0.3, 0.9))
        y, x = int(rng.integers(0, size - h)), int(rng.integers(0, size - w))
        img = img.copy()
        img[y : y + h, x : x + w] = rng.integers(0, 256, size=3)
    if r[4] < 0.3:  # JPEG, as uploaded photos are
        ok, buf = cv2.imencode(".jpg", img, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(25, 91))])
        if ok:
            img = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    return img
