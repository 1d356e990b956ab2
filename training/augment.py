"""Training-time augmentation of aligned face crops (numpy/OpenCV, run in a prefetch thread)."""

from __future__ import annotations

import cv2
import numpy as np


def augment(crops: np.ndarray, rng: np.random.Generator, size: int) -> np.ndarray:
    """Random scale, shift, small rotation, flip, colour and grey of uint8 crops.

    Args:
        crops: (N, C, C, 3) uint8 RGB aligned crops (C = facesim.detect.CROP_SIZE).
        size: output side (the encoder's input size; its centre crop is what inference sees).

    Returns:
        (N, size, size, 3) float32 in [0, 255].
    """
    n, c = len(crops), crops.shape[1]
    out = np.empty((n, size, size, 3), np.float32)
    for i in range(n):
        scale = rng.uniform(0.9, 1.1)
        angle = rng.uniform(-8, 8)
        shift = rng.uniform(-3, 3, size=2)
        m = cv2.getRotationMatrix2D((c / 2, c / 2), angle, scale)
        m[:, 2] += size / 2 - c / 2 + shift
        img = cv2.warpAffine(crops[i], m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        if rng.random() < 0.5:
            img = img[:, ::-1]
        out[i] = img
    # Colour: brightness, contrast, and now and then grey.
    b = rng.uniform(-25, 25, size=(n, 1, 1, 1))
    k = rng.uniform(0.75, 1.25, size=(n, 1, 1, 1))
    mean = out.mean(axis=(1, 2, 3), keepdims=True)
    out = (out - mean) * k + mean + b
    grey = rng.random(n) < 0.1
    if grey.any():
        out[grey] = out[grey].mean(axis=3, keepdims=True)
    return np.clip(out, 0, 255, out=out)
