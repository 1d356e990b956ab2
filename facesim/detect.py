"""Face detection: MediaPipe's BlazeFace run by OpenCV's DNN module -> boxes, keypoints, scores.

The full-range model (faces far and near, 192 px input) runs first; when it finds nothing, the short-range
model (faces filling the frame, 128 px input: selfies, passport-style and small close-up photos) does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from .dnn import lent_model
from .errors import FaceSimError, NoFaceFoundError

__all__ = ["Detection", "detect", "detect_many", "detector_file", "MIN_SCORE", "KEYPOINTS"]

#: Detections scoring below this are dropped. Chosen on the validation photos (docs/decisions.md):
#: 0.5 (MediaPipe's default) lets through patterned clothes; above 0.6 real, turned faces start to go.
MIN_SCORE = 0.55
#: The short-range model's floor (it runs only when the full-range model finds nothing). Measured: the
#: faces it recovers score 0.73-0.96 (74 AT&T photos) and 0.70-0.90 (4 validation photos); a drawn cat
#: face scores 0.46-0.58 (turned), blank and landscape images nothing.
MIN_SCORE_SHORT = 0.65
#: Two detections overlapping more than this (intersection over union) are one face.
NMS_IOU = 0.3
#: Names of the six keypoints, in the detector's order. "right eye" is the person's right eye, which
#: appears on the left of an upright, unmirrored photo.
KEYPOINTS = ("right_eye", "left_eye", "nose", "mouth", "right_ear", "left_ear")


@dataclass(frozen=True)
class _Model:
    """One BlazeFace model: its file in the wheel, its square input side, its anchor centres (relative)."""

    file: str
    side: int
    anchors: np.ndarray


def _grid(n: int, per_cell: int) -> np.ndarray:
    centres = np.stack(np.meshgrid((np.arange(n) + 0.5) / n, (np.arange(n) + 0.5) / n), -1).reshape(-1, 2)
    return np.repeat(centres, per_cell, axis=0)


#: Full range: one anchor per cell of a 48x48 grid (stride 4). Short range: 2 per cell at stride 8 and
#: 6 per cell at stride 16 (MediaPipe's SSD anchor options for these models).
FULL_RANGE = _Model("face_detection_full_range.tflite", 192, _grid(48, 1))
SHORT_RANGE = _Model("face_detection_short_range.tflite", 128, np.concatenate([_grid(16, 2), _grid(8, 6)]))
MODEL_FILE = FULL_RANGE.file

@dataclass(frozen=True)
class Detection:
    """One face the detector found, in pixels of the image it was given.

    Attributes:
        box: (x, y, width, height); may reach outside the image for a face cut off at its edge.
        score: detector confidence in [0, 1].
        keypoints: (6, 2) float32 (x, y) in `KEYPOINTS` order (eyes, nose tip, mouth centre, ears).
    """

    box: tuple[float, float, float, float]
    score: float
    keypoints: np.ndarray


#: Where the BlazeFace model files ship with the library (Apache-2.0, MediaPipe; see models/README.md).
MODELS_DIR = Path(__file__).resolve().parent / "models"


@lru_cache(maxsize=None)
def detector_file(name: str = MODEL_FILE) -> Path:
    """A BlazeFace model file shipped with the library (`facesim/models/`)."""
    path = MODELS_DIR / name
    if not path.is_file():
        raise FaceSimError(f"the face detector model {path} is missing: reinstall FaceSim", input_name="detector")
    return path




def detect(image: np.ndarray, *, name: str = "image", min_score: float = MIN_SCORE,
           rotations: bool = True) -> list[Detection]:
    """Every face in an RGB uint8 image, best first (score and size together, see `rank_key`).

    The whole photo is letterboxed to the detector's square input; when nothing is found and
    `rotations` is set, the photo turned by 90, 270 and 180 degrees is tried too (phone photos without
    their EXIF orientation), and the detections are mapped back to the photo as given. Only when the
    full-range model finds nothing in any of these does the short-range model (faces filling the photo)
    look at the upright photo, keeping faces above `MIN_SCORE_SHORT` whose eyes are roughly level.

    Args:
        image: RGB uint8 array (H, W, 3).
        name: how the error names this input.
        min_score: detections below this score are dropped.
        rotations: retry the turned photo when nothing is found upright.

    Returns:
        Detections in the image's pixel coordinates, best first.

    Raises:
        NoFaceFoundError: nothing scored above `min_score`.
    """
    found = detect_many([image], min_score=min_score, rotations=rotations)[0]
    if not found:
        raise NoFaceFoundError("no face found", input_name=name)
    return found


def detect_many(images: list[np.ndarray], *, min_score: float = MIN_SCORE,
                rotations: bool = True) -> list[list[Detection]]:
    """`detect` on several images with one detector pass for all of them (a request's photos).

    The full-range model sees every image in one batch; the turned images and the short-range fallback run
    only for the images that still have no face, again batched.

    Returns:
        Per image, its detections best first (empty: no face).
    """
    found = _detect_batch(images, min_score)
    todo = [i for i, f in enumerate(found) if not f]
    if todo and rotations:
        for k in (1, 3, 2):  # quarter turns counter-clockwise: phones are held either way, rarely upside down
            turned = _detect_batch([np.ascontiguousarray(np.rot90(images[i], k)) for i in todo], min_score)
            for i, dets in zip(todo, turned):
                h, w = images[i].shape[:2]
                found[i] = [_unrotate(d, k, w, h) for d in dets]
            todo = [i for i in todo if not found[i]]
            if not todo:
                break
    if todo:  # a face filling the photo: the short-range model, upright only, with a higher floor
        short = _detect_batch([images[i] for i in todo], max(min_score, MIN_SCORE_SHORT), SHORT_RANGE)
        for i, dets in zip(todo, short):
            found[i] = [d for d in dets if _upright(d)]
    return [sorted(f, key=rank_key, reverse=True) for f in found]


def rank_key(d: Detection) -> float:
    """Which face is "the" face: the larger and surer, the better (a big, unsure box loses to a sure one)."""
    return math.sqrt(max(d.box[2] * d.box[3], 1.0)) * d.score ** 4


def _upright(d: Detection) -> bool:
    """Eye line within 45 degrees of level (the short-range model also "finds" sideways faces, with
    keypoints too unreliable to align)."""
    (rx, ry), (lx, ly) = d.keypoints[0], d.keypoints[1]  # the person's right eye is on the photo's left
    return abs(math.degrees(math.atan2(ly - ry, lx - rx))) <= 45.0


def _detect_batch(images: list[np.ndarray], min_score: float, model: _Model = FULL_RANGE) -> list[list[Detection]]:
    """One forward pass of `model` over the letterboxed images; each image's detections (unsorted)."""
    if not images:
        return []
    squares, frames = [], []
    for image in images:
        h, w = image.shape[:2]
        scale = model.side / max(h, w)
        nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
        small = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        top, left = (model.side - nh) // 2, (model.side - nw) // 2
        square = np.full((model.side, model.side, 3), -1.0, np.float32)  # black letterbox, in [-1, 1]
        square[top : top + nh, left : left + nw] = small * np.float32(1 / 127.5) - np.float32(1.0)
        squares.append(square)
        frames.append((scale, left, top))
    with lent_model(str(detector_file(model.file))) as net:
        outs = net.run(np.stack(squares))  # NHWC in [-1, 1]
    raw_boxes, raw_scores = _split_outputs(outs, len(images), len(model.anchors))
    return [_decode(raw_boxes[k], raw_scores[k], min_score, model, *frames[k]) for k in range(len(images))]


def _decode(raw_boxes: np.ndarray, raw_scores: np.ndarray, min_score: float, model: _Model, scale: float,
            left: int, top: int) -> list[Detection]:
    """One image's detections from the model's raw outputs (anchors decoded, letterbox undone, NMS)."""
    scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80, 80)))
    keep = np.flatnonzero(scores > min_score)
    if keep.size == 0:
        return []
    reg = raw_boxes[keep].reshape(-1, 8, 2) / model.side
    anchors = model.anchors[keep][:, None, :]
    centre = reg[:, 0:1] + anchors
    size = reg[:, 1]
    points = reg[:, 2:] + anchors
    # Back from the letterboxed square to the image's pixels.
    offset = np.array([left, top], np.float32)
    centre = (centre[:, 0] * model.side - offset) / scale
    size = size * model.side / scale
    points = (points * model.side - offset) / scale
    boxes = np.concatenate([centre - size / 2, size], axis=1)
    return _nms(boxes, scores[keep], points)


def _split_outputs(outs: list, batch: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(batch, n, 16) box regressors and (batch, n) score logits, whatever order the outputs come in."""
    boxes = scores = None
    for value in outs:
        value = np.asarray(value, np.float32).reshape(-1, value.shape[-1])
        if value.shape[-1] == 16:
            boxes = value
        elif value.shape[-1] == 1:
            scores = value[:, 0]
    if boxes is None or scores is None or len(boxes) != batch * n or len(scores) != batch * n:
        raise FaceSimError("unexpected face detector outputs", input_name="detector")
    return boxes.reshape(batch, n, 16), scores.reshape(batch, n)


def _nms(boxes: np.ndarray, scores: np.ndarray, points: np.ndarray) -> list[Detection]:
    """Weighted non-maximum suppression (MediaPipe's): overlapping detections are averaged by score."""
    order = np.argsort(-scores, kind="stable")
    x0, y0 = boxes[:, 0], boxes[:, 1]
    x1, y1 = x0 + boxes[:, 2], y0 + boxes[:, 3]
    area = boxes[:, 2] * boxes[:, 3]
    done = np.zeros(len(scores), bool)
    out = []
    for i in order:
        if done[i]:
            continue
        iw = np.clip(np.minimum(x1[i], x1) - np.maximum(x0[i], x0), 0, None)
        ih = np.clip(np.minimum(y1[i], y1) - np.maximum(y0[i], y0), 0, None)
        inter = iw * ih
        iou = inter / np.maximum(area[i] + area - inter, 1e-9)
        group = np.flatnonzero((iou > NMS_IOU) & ~done)
        done[group] = True
        wts = scores[group][:, None]
        box = (boxes[group] * wts).sum(0) / wts.sum()
        kp = (points[group] * wts[:, :, None]).sum(0) / wts.sum()
        if box[2] <= 0 or box[3] <= 0:
            continue
        out.append(Detection(box=tuple(float(v) for v in box), score=float(scores[i]),
                             keypoints=kp.astype(np.float32)))
    return out


def _unrotate(d: Detection, k: int, w: int, h: int) -> Detection:
    """Map a detection made on np.rot90(image, k) back to the image's coordinates."""
    pts = _inv_rot(d.keypoints.astype(np.float64), w, h, k)
    x, y, bw, bh = d.box
    corners = _inv_rot(np.array([[x, y], [x + bw, y + bh]], np.float64), w, h, k)
    lo, hi = corners.min(0), corners.max(0)
    return Detection(box=(float(lo[0]), float(lo[1]), float(hi[0] - lo[0]), float(hi[1] - lo[1])),
                     score=d.score, keypoints=pts.astype(np.float32))


def _inv_rot(p: np.ndarray, w: int, h: int, k: int) -> np.ndarray:
    """Points of np.rot90(image, k) (image W x H) back to the image's coordinates."""
    u, v = p[:, 0], p[:, 1]
    k %= 4
    if k == 1:  # rotated image is H wide, W tall: (x, y) -> (y, W - 1 - x)
        return np.stack([w - 1 - v, u], 1)
    if k == 2:
        return np.stack([w - 1 - u, h - 1 - v], 1)
    if k == 3:  # (x, y) -> (H - 1 - y, x)
        return np.stack([v, h - 1 - u], 1)
    return p
