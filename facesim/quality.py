"""Quality: size, detector score, sharpness and pose of a face, and the guard rails: faces outside what the
uncertainty model (`facesim.uncertainty`) was validated on, which no comparison should be trusted with."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from .detect import Detection

__all__ = ["Quality", "assess", "MIN_EYE_DISTANCE", "MIN_SHARPNESS", "MAX_YAW", "MIN_SCORE", "MAX_OUTSIDE"]

# The guard rails. Within them, how far a comparison can be trusted is the uncertainty model's call: it weighs
# these same figures with the distance (facesim.uncertainty; docs/accuracy.md has the rows). Beyond them the
# validation photos hold too few faces to learn from (each flags about 1% of the 1,200 validation pairs), and
# the pairs they flag are answered worse than the rest (wild + LFW fold 7: 0.86, 0.86 and 0.89 against 0.97).
#: Eye centres closer than this many photo pixels: too few pixels to tell people apart.
MIN_EYE_DISTANCE = 12.0
#: Sharpness (see `Quality.sharpness`) below this: heavily blurred, or a face upscaled from a few pixels. A
#: Gaussian blur of sigma 2 px on a 250 px LFW photo brings a sharp face (0.12) to about this value (3 px:
#: 0.019); the softest 1% of the faces found in the wild photos sit at 0.049, of LFW's at 0.039.
MIN_SHARPNESS = 0.03
#: Estimated head turn (degrees) reported as a figure; the model weighs it (no guard rail: the validation
#: pairs with a face turned beyond 50 degrees are answered as well as the rest).
MAX_YAW = 50.0
#: Detector score below this: perhaps not a face at all, or heavily occluded.
MIN_SCORE = 0.6
#: Side at which sharpness is measured (larger chips are shrunk to it first).
SHARPNESS_SIDE = 80
#: Share of the face box outside the photo beyond which the face is cut off.
MAX_OUTSIDE = 0.25


@dataclass(frozen=True)
class Quality:
    """How much a face can be trusted, and why not.

    Attributes:
        face_size: side of the detector's box, in photo pixels.
        eye_distance: distance between the eye centres, in photo pixels.
        score: detector confidence in [0, 1].
        sharpness: variance of the Laplacian of the grey aligned crop's centre over the variance of its grey
            levels (higher is sharper; independent of contrast).
        yaw: estimated head turn in degrees (0 = facing the camera; sign: towards the image's right).
        roll: tilt of the eye line in degrees (0 = level).
        outside: share of the face box that lies outside the photo (0 = whole face visible).
    """

    face_size: float
    eye_distance: float
    score: float
    sharpness: float
    yaw: float
    roll: float
    outside: float

    @property
    def reasons(self) -> tuple[str, ...]:
        """Why no comparison with this face should be trusted (the guard rails), in words; empty when within them."""
        out = []
        if self.eye_distance < MIN_EYE_DISTANCE:
            out.append("face too small")
        if self.sharpness < MIN_SHARPNESS:
            out.append("blurred")
        if self.outside > MAX_OUTSIDE:
            out.append("face cut off at the edge")
        if self.score < MIN_SCORE:
            out.append("face unclear")
        return tuple(out)

    @property
    def ok(self) -> bool:
        return not self.reasons

    def to_dict(self) -> dict:
        return {"face_size": round(self.face_size, 1), "eye_distance": round(self.eye_distance, 1),
                "score": round(self.score, 3), "sharpness": round(self.sharpness, 3), "yaw": round(self.yaw, 1),
                "roll": round(self.roll, 1), "outside": round(self.outside, 3), "reasons": list(self.reasons)}


def assess(image: np.ndarray | tuple[int, int], detection: Detection, crop: np.ndarray) -> Quality:
    """The quality record of one detected face.

    Args:
        image: the RGB uint8 photo (H, W, 3) the face was found in, or its (height, width): the detection's
            box and keypoints are in its pixels.
        detection: the detector's box, score and keypoints.
        crop: the aligned RGB uint8 crop of that face.
    """
    kp = detection.keypoints.astype(np.float64)
    right_eye, left_eye, nose = kp[0], kp[1], kp[2]
    eye_vec = left_eye - right_eye
    eye_distance = float(np.hypot(*eye_vec))
    roll = math.degrees(math.atan2(eye_vec[1], eye_vec[0]))
    # Yaw from how far the nose tip sits off the eyes' midline, measured along the eye line: the nose tip
    # stands about 0.6 eye distances in front of the eyes, so offset / (0.6 * eye distance) ~ sin(yaw).
    unit = eye_vec / max(eye_distance, 1e-6)
    offset = float(np.dot(nose - (right_eye + left_eye) / 2, unit))
    yaw = math.degrees(math.asin(max(-1.0, min(1.0, offset / max(0.6 * eye_distance, 1e-6)))))
    if crop.shape[0] > SHARPNESS_SIDE:  # the rule was set on 80 px crops: measure at that scale
        crop = cv2.resize(crop, (SHARPNESS_SIDE, SHARPNESS_SIDE), interpolation=cv2.INTER_AREA)
    c = crop.shape[0]
    grey = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float64)[c // 10 : c - c // 10, c // 10 : c - c // 10]
    sharpness = float(cv2.Laplacian(grey, cv2.CV_64F).var() / max(grey.var(), 1e-6))
    x, y, w, h = detection.box
    ih, iw = image.shape[:2] if isinstance(image, np.ndarray) else image
    inside = max(0.0, min(x + w, iw) - max(x, 0)) * max(0.0, min(y + h, ih) - max(y, 0))
    outside = 1.0 - inside / max(w * h, 1e-6)
    return Quality(face_size=float(max(w, h)), eye_distance=eye_distance, score=detection.score,
                   sharpness=sharpness, yaw=yaw, roll=roll, outside=float(outside))
