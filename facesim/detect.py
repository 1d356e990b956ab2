"""Face detection and alignment with OpenCV's Haar cascades; the only module that calls OpenCV."""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

from .errors import NoFaceFoundError

__all__ = ["Face", "detect_faces", "center_crop_face", "CROP_SIZE"]

#: Side, in pixels, of the aligned face crop handed to the encoder.
CROP_SIZE = 80
#: Side of the crop relative to the detected face box (the box spans brows to chin).
CROP_SCALE = 1.25
#: Detection runs on a copy whose longer side is at most this many pixels.
DETECT_MAX_SIDE = 480
#: Faces whose side is below this fraction of the largest face's side are treated as spurious.
MIN_RELATIVE_SIDE = 0.3
#: Eye-based levelling is only trusted for tilts up to this many degrees.
MAX_TILT_DEGREES = 30.0

_local = threading.local()


@dataclass(frozen=True)
class Face:
    """One detected face.

    Attributes:
        box: (x, y, width, height) of the detection, in pixels of the original image.
        score: detector confidence (Haar level weight; higher is surer).
        angle: degrees the crop was rotated to level the eyes (0 when no eyes were found).
        landmarks: ((left_eye_x, left_eye_y), (right_eye_x, right_eye_y)) in image pixels, or None.
        crop: the aligned face, RGB uint8 of shape (CROP_SIZE, CROP_SIZE, 3).
    """

    box: tuple[int, int, int, int]
    score: float
    angle: float = 0.0
    landmarks: tuple[tuple[float, float], tuple[float, float]] | None = None
    crop: np.ndarray = field(repr=False, compare=False, default=None)


def _cascades() -> tuple[cv2.CascadeClassifier, cv2.CascadeClassifier]:
    # One pair per thread: CascadeClassifier keeps scratch state and is not documented as thread safe.
    pair = getattr(_local, "cascades", None)
    if pair is None:
        face = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_frontalface_default.xml")
        eyes = cv2.CascadeClassifier(cv2.data.haarcascades + "haarcascade_eye.xml")
        if face.empty() or eyes.empty():
            raise RuntimeError(
                "OpenCV's Haar cascades are missing: install opencv-python-headless 4.x "
                "(the 5.0 wheels do not ship them)"
            )
        pair = _local.cascades = (face, eyes)
    return pair


def detect_faces(image: np.ndarray, *, name: str = "image") -> list[Face]:
    """Find every face in an RGB uint8 image, largest first, each with its aligned crop.

    Detection runs on a grey copy downscaled to at most `DETECT_MAX_SIDE` pixels (faster, and fewer
    spurious boxes on big photos); each crop is cut from the full-resolution image.

    Args:
        image: RGB uint8 array of shape (H, W, 3), e.g. from `load_image`.
        name: how the error message names this input.

    Returns:
        The faces, largest first.

    Raises:
        NoFaceFoundError: no face was detected.
    """
    face_cascade, eye_cascade = _cascades()
    h, w = image.shape[:2]
    scale = min(1.0, DETECT_MAX_SIDE / max(h, w))
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    if scale < 1.0:
        gray = cv2.resize(gray, (round(w * scale), round(h * scale)), interpolation=cv2.INTER_AREA)
    gray = cv2.equalizeHist(gray)
    # Faces that fill the frame touch its edges; a replicated border lets the detector see them whole.
    pad = max(gray.shape) // 10
    padded = cv2.copyMakeBorder(gray, pad, pad, pad, pad, cv2.BORDER_REPLICATE)
    min_side = max(24, min(gray.shape) // 8)
    boxes, _, weights = face_cascade.detectMultiScale3(
        padded, scaleFactor=1.1, minNeighbors=5, minSize=(min_side, min_side), outputRejectLevels=True
    )
    if len(boxes) == 0:
        raise NoFaceFoundError("no face found", input_name=name)
    order = np.argsort([-(bw * bh) for (_, _, bw, bh) in boxes], kind="stable")
    largest = boxes[order[0]][2]
    faces = []
    for i in order:
        bx, by, bw, bh = (int(v) for v in boxes[i])
        if bw < MIN_RELATIVE_SIDE * largest:
            continue
        eyes = _find_eyes(eye_cascade, padded, bx, by, bw, bh)
        # Back to the original image's pixels.
        box = tuple(int(round((v - pad) / scale)) if k < 2 else int(round(v / scale))
                    for k, v in enumerate((bx, by, bw, bh)))
        angle, landmarks = 0.0, None
        if eyes is not None:
            (lx, ly), (rx, ry) = eyes
            angle = math.degrees(math.atan2(ry - ly, rx - lx))
            landmarks = (((lx - pad) / scale, (ly - pad) / scale), ((rx - pad) / scale, (ry - pad) / scale))
        cx, cy = box[0] + box[2] / 2.0, box[1] + box[3] / 2.0
        crop = _aligned_crop(image, cx, cy, box[2] * CROP_SCALE, angle)
        faces.append(Face(box=box, score=float(np.ravel(weights)[i]), angle=angle, landmarks=landmarks,
                          crop=crop))
    return faces


def _find_eyes(cascade, gray, x, y, w, h):
    """Both eye centres inside a face box, or None when they cannot be told apart reliably."""
    top = gray[y + h // 6 : y + h // 2 + h // 10, x : x + w]
    if top.size == 0:
        return None
    eyes = cascade.detectMultiScale(top, scaleFactor=1.1, minNeighbors=4,
                                    minSize=(max(6, w // 10), max(6, w // 10)), maxSize=(w // 3, w // 3))
    if len(eyes) < 2:
        return None
    centres = [(x + ex + ew / 2.0, y + h // 6 + ey + eh / 2.0) for (ex, ey, ew, eh) in eyes]
    mid = x + w / 2.0
    left = [c for c in centres if c[0] < mid]
    right = [c for c in centres if c[0] >= mid]
    if not left or not right:
        return None
    # The eye on each side nearest the vertical middle of the face band.
    le = min(left, key=lambda c: abs(c[0] - (x + 0.3 * w)))
    re = min(right, key=lambda c: abs(c[0] - (x + 0.7 * w)))
    dist = math.hypot(re[0] - le[0], re[1] - le[1])
    angle = abs(math.degrees(math.atan2(re[1] - le[1], re[0] - le[0])))
    if not (0.25 * w <= dist <= 0.65 * w) or angle > MAX_TILT_DEGREES:
        return None
    return le, re


def _aligned_crop(image: np.ndarray, cx: float, cy: float, side: float, angle: float) -> np.ndarray:
    """A CROP_SIZE square of `side` source pixels centred on (cx, cy), rotated by `angle` degrees."""
    # Cut a region big enough for any rotation, shrink it with INTER_AREA (no aliasing on big photos),
    # then rotate and crop in one affine warp.
    half = int(math.ceil(side * 0.75))
    x0, y0 = int(round(cx)) - half, int(round(cy)) - half
    h, w = image.shape[:2]
    region = image[max(0, y0) : min(h, y0 + 2 * half), max(0, x0) : min(w, x0 + 2 * half)]
    region = cv2.copyMakeBorder(
        region, max(0, -y0), max(0, y0 + 2 * half - h), max(0, -x0), max(0, x0 + 2 * half - w),
        cv2.BORDER_REPLICATE,
    )
    f = CROP_SIZE / side
    size = max(1, int(round(2 * half * f)))
    region = cv2.resize(region, (size, size), interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    c = size / 2.0
    m = cv2.getRotationMatrix2D((c, c), angle, 1.0)
    m[:, 2] += CROP_SIZE / 2.0 - c
    return cv2.warpAffine(region, m, (CROP_SIZE, CROP_SIZE), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def center_crop_face(image: np.ndarray, *, fraction: float = 0.46) -> Face:
    """The evaluation protocol's fallback when no face is found: the image's central square.

    Args:
        image: RGB uint8 array of shape (H, W, 3).
        fraction: side of the square relative to the image's shorter side.

    Returns:
        A Face with score 0 whose box is the central square.
    """
    h, w = image.shape[:2]
    side = min(h, w) * fraction
    box = (int(round(w / 2 - side / 2)), int(round(h / 2 - side / 2)), int(round(side)), int(round(side)))
    crop = _aligned_crop(image, w / 2.0, h / 2.0, side * CROP_SCALE, 0.0)
    return Face(box=box, score=0.0, crop=crop)
