"""Alignment: keypoints -> the aligned face crop (the one function the app, training and evaluation share)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

__all__ = ["Chip", "DEFAULT_CHIP", "chip_matrix", "CROP_SIZE", "TEMPLATE", "similarity_transform", "alignment_matrix", "align", "center_crop", "warp_points"]

#: Side, in pixels, of the aligned face crop. The encoder sees its central `input_size` square (64 px) after
#: training jitter; the 8 px margin is what scale and shift augmentation moves into view.
CROP_SIZE = 80
#: Where the right eye, left eye, nose tip and mouth centre land in the crop, as fractions of its side.
#: The median BlazeFace keypoints of 1,500 LFW faces (nose 0.606 and mouth 1.112 eye distances below the
#: eyes), scaled so that the eyes are 0.30 of the crop apart and sit at 0.40 of its height. Framing was
#: chosen on the wild validation pairs (docs/decisions.md): 0.20-0.36 apart and 0.36-0.44 high were tried.
TEMPLATE = np.array([
    [0.350, 0.400],  # right eye (image left)
    [0.650, 0.400],  # left eye
    [0.500, 0.582],  # nose tip
    [0.500, 0.734],  # mouth centre
], np.float64)


@dataclass(frozen=True)
class Chip:
    """The aligned crop an encoder was trained on; each architecture module defines its own.

    Attributes:
        size: side in pixels.
        template: (4, 2) where the right eye, left eye, nose tip and mouth centre land, as fractions of `size`.
        fit: "level" levels the eyes exactly and fits scale and shift by least squares (the small CNN's
            crop); "similarity" fits rotation, scale and shift to all four points by least squares
            (dlib's chip, whose own landmarks are not BlazeFace's).
    """

    size: int
    template: np.ndarray = field(repr=False, compare=False)
    fit: str = "level"

    @property
    def key(self) -> str:
        """Names the chip in caches of extracted crops."""
        return f"{self.fit}-{self.size}-" + ",".join(f"{v:.4f}" for v in np.asarray(self.template).ravel())


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """The least-squares rotation + uniform scale + shift mapping points `src` onto `dst` (Umeyama).

    Args:
        src, dst: (N, 2) point arrays, N >= 2.

    Returns:
        (2, 3) float64 affine matrix M with dst ~ M @ [x, y, 1].
    """
    src, dst = np.asarray(src, np.float64), np.asarray(dst, np.float64)
    ms, md = src.mean(0), dst.mean(0)
    s, d = src - ms, dst - md
    # For 2-D similarity the optimum has a closed form: a = sum(s.d)/|s|^2, b = sum(s x d)/|s|^2.
    norm = max((s ** 2).sum(), 1e-12)
    a = (s * d).sum() / norm
    b = (s[:, 0] * d[:, 1] - s[:, 1] * d[:, 0]).sum() / norm
    rot = np.array([[a, -b], [b, a]])
    return np.hstack([rot, (md - rot @ ms)[:, None]])


def warp_points(m: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a (2, 3) affine matrix to (N, 2) points."""
    p = np.asarray(points, np.float64)
    return p @ m[:, :2].T + m[:, 2]


def align(image: np.ndarray, keypoints: np.ndarray, *, size: int = CROP_SIZE, chip: Chip | None = None) -> np.ndarray:
    """The aligned crop of one face: eyes, nose and mouth moved onto `TEMPLATE` by one similarity warp.

    On big photos the face is first shrunk with area averaging (no aliasing), then warped once.

    Args:
        image: RGB uint8 array (H, W, 3), the full-resolution photo.
        keypoints: (>=4, 2) detector keypoints (right eye, left eye, nose tip, mouth centre, ...) in pixels.
        size: side of the crop (the small CNN's template).
        chip: the encoder's chip (size, template, fit); overrides `size`.

    Returns:
        RGB uint8 array (size, size, 3).
    """
    chip = chip or Chip(size, TEMPLATE, "level")
    return _warp(image, chip_matrix(keypoints, chip), chip.size)


def chip_matrix(keypoints: np.ndarray, chip: Chip) -> np.ndarray:
    """The (2, 3) warp from photo pixels to `chip` for a face's (>=4, 2) keypoints."""
    template = np.asarray(chip.template, np.float64) * chip.size
    if chip.fit == "similarity":
        return similarity_transform(np.asarray(keypoints, np.float64)[:4], template)
    return alignment_matrix(keypoints, size=chip.size, template=template / chip.size)


def alignment_matrix(keypoints: np.ndarray, *, size: int = CROP_SIZE, template: np.ndarray = TEMPLATE) -> np.ndarray:
    """The (2, 3) similarity warp from photo pixels to the crop that `align` uses.

    The rotation levels the eyes exactly (the eye line is the most reliable direction on a turned face);
    scale and shift are the least-squares fit of eyes, nose and mouth to the template, so a turned face,
    whose eyes look closer together, is not blown up.
    """
    src = np.asarray(keypoints, np.float64)[:4]
    dst = np.asarray(template) * size
    eye = src[1] - src[0]
    angle = math.atan2(eye[1], eye[0])
    c, s_ = math.cos(-angle), math.sin(-angle)
    rot = np.array([[c, -s_], [s_, c]])
    p = src @ rot.T
    mp, md = p.mean(0), dst.mean(0)
    scale = ((p - mp) * (dst - md)).sum() / max(((p - mp) ** 2).sum(), 1e-12)
    lin = scale * rot
    return np.hstack([lin, (md - scale * mp)[:, None]])


def _warp(image: np.ndarray, m: np.ndarray, size: int) -> np.ndarray:
    scale = math.hypot(m[0, 0], m[1, 0])  # crop pixels per photo pixel
    if scale < 0.5:
        # Cut the source region the crop covers, shrink it by area averaging to twice the crop's
        # resolution, and fold that resize into the warp.
        inv = cv2.invertAffineTransform(m)
        corners = warp_points(inv, np.array([[0, 0], [size, 0], [0, size], [size, size]], np.float64))
        h, w = image.shape[:2]
        x0, y0 = np.floor(corners.min(0)).astype(int) - 2
        x1, y1 = np.ceil(corners.max(0)).astype(int) + 2
        x0c, y0c, x1c, y1c = max(0, x0), max(0, y0), min(w, x1), min(h, y1)
        if x1c - x0c >= 2 and y1c - y0c >= 2:
            region = image[y0c:y1c, x0c:x1c]
            f = 2 * scale
            rw, rh = max(1, round(region.shape[1] * f)), max(1, round(region.shape[0] * f))
            region = cv2.resize(region, (rw, rh), interpolation=cv2.INTER_AREA)
            fx, fy = rw / (x1c - x0c), rh / (y1c - y0c)
            # photo -> region pixels: u = (x - x0c) * fx; so photo = region / f + offset.
            to_photo = np.array([[1 / fx, 0, x0c], [0, 1 / fy, y0c], [0, 0, 1]])
            m = m @ to_photo
            image = region
    return cv2.warpAffine(image, m, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def center_crop(image: np.ndarray, *, fraction: float = 0.46, size: int = CROP_SIZE,
                chip: Chip | None = None) -> np.ndarray:
    """PROTOCOL.md A's fallback when no face is found: the template placed on the image's central square.

    The eyes of the template are put where a centred face of width `fraction` x the shorter side has them.
    """
    h, w = image.shape[:2]
    side = min(h, w) * fraction
    eye_gap = side * 0.45
    cx, cy = w / 2.0, h / 2.0
    src = np.array([[cx - eye_gap / 2, cy - side * 0.15], [cx + eye_gap / 2, cy - side * 0.15]])
    template = TEMPLATE if chip is None else np.asarray(chip.template)
    size = size if chip is None else chip.size
    m = similarity_transform(src, template[:2] * size)
    return _warp(image, m, size)


#: The small CNN's chip (the default of `align` without a chip).
DEFAULT_CHIP = Chip(CROP_SIZE, TEMPLATE, "level")
