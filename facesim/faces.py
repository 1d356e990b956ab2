"""Faces of photos: each photo decoded at the size the work needs, one detector pass for a request's photos,
then each face aligned and assessed.

Detection sees a photo letterboxed to 192 px, so a JPEG is decoded for it at the largest libjpeg reduction
(1/2, 1/4, 1/8) that keeps its longer side at least `DETECT_SIDE` pixels; each face's chip is then cut from
the largest reduction at which the face still has at least the chip's pixels (a small face: the full photo).
Keypoints, boxes and quality figures are in the full photo's pixels, whatever decode they came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from .align import DEFAULT_CHIP, Chip, align, chip_matrix
from .detect import Detection, detect_many
from .errors import FaceSimError, NoFaceFoundError
from .image import Photo
from .quality import Quality, assess

__all__ = ["Face", "DETECT_SIDE", "faces_of", "decode_for_detection"]

#: A photo is decoded for detection with its longer side at least this long: over twice the detector's
#: 192 px input, so that the detector's own area resize still averages (detections match the full decode's,
#: tested), and large enough that the same decode usually serves the chips too: a second decode costs as much
#: as the first (libjpeg's entropy decoding, which no reduction shortens, is most of it).
DETECT_SIDE = 512
#: A chip may be cut from a decode in which the face has at least 1 / UPSCALE of the chip's pixels per side
#: (a 25% enlargement at most; measured on real photos: docs/benchmarks.md).
UPSCALE = 1.25


@dataclass(frozen=True)
class Face:
    """One face found in a photo.

    Attributes:
        box: (x, y, width, height) of the detection in photo pixels (clipped to the photo).
        score: detector confidence in [0, 1].
        keypoints: (6, 2) float32 (x, y) photo pixels: right eye, left eye, nose tip, mouth centre, right
            ear, left ear (the person's right: the image's left in an unmirrored photo).
        quality: size, sharpness, pose and the reasons not to trust this face.
        crop: the aligned face, RGB uint8 (chip size, chip size, 3), eyes level at the template's places.
    """

    box: tuple[int, int, int, int]
    score: float
    quality: Quality
    keypoints: np.ndarray = field(repr=False, compare=False, default=None)
    crop: np.ndarray = field(repr=False, compare=False, default=None)


def decode_for_detection(photo: Photo) -> np.ndarray:
    """The photo's pixels at the size detection needs (decoded now; the slow part, run in parallel)."""
    return photo.at(photo.reduction_for(DETECT_SIDE))


def faces_of(photos: Sequence[Photo], *, chip: Chip = DEFAULT_CHIP,
             map_fn: Callable = map) -> list[list[Face] | FaceSimError]:
    """Every face of each photo, best first; one detector pass for all of them.

    Args:
        photos: the photos (`facesim.image.open_photo`).
        chip: the encoder's chip the faces are cut for.
        map_fn: how per-photo work (decoding, cutting chips) is spread: `map`, or a thread pool's `map`.

    Returns:
        Per photo, its faces (best first), or the FaceSimError that photo raised (no face found, corrupt
        data), naming it.
    """
    def decode(photo):
        try:
            return decode_for_detection(photo)
        except FaceSimError as exc:
            return exc

    pixels = list(map_fn(decode, photos))
    ok = [i for i, p in enumerate(pixels) if not isinstance(p, FaceSimError)]
    found = dict(zip(ok, detect_many([pixels[i] for i in ok])))

    def cut(i):
        if isinstance(pixels[i], FaceSimError):
            return pixels[i]
        if not found[i]:
            return NoFaceFoundError("no face found", input_name=photos[i].name)
        try:
            return [_face(photos[i], pixels[i], d, chip) for d in found[i]]
        except FaceSimError as exc:
            return exc

    return list(map_fn(cut, range(len(photos))))


def _face(photo: Photo, pixels: np.ndarray, d: Detection, chip: Chip) -> Face:
    """One detection (in `pixels`' coordinates) as a Face in the full photo's pixels, its chip cut from the
    smallest decode that still gives the face the chip's pixels (one already made if it does: a second
    decode costs as much as the first, most of it libjpeg's entropy decoding, which no reduction shortens)."""
    sx, sy = photo.scale_of(pixels)
    full = _to_full(d, sx, sy)
    m = chip_matrix(full.keypoints, chip)
    per_photo_px = math.hypot(m[0, 0], m[1, 0])  # chip pixels per full-photo pixel
    enough = [r for r in photo.reductions if r == 1 or r * per_photo_px <= UPSCALE]
    decoded = [r for r in enough if photo.has(r)]
    source = photo.at(max(decoded) if decoded else max(enough))  # a decode already made, if one has the pixels
    fx, fy = photo.scale_of(source)
    points = (full.keypoints.astype(np.float64) + 0.5) / np.array([fx, fy]) - 0.5
    crop = align(source, points, chip=chip)
    x, y, bw, bh = full.box
    x0, y0 = max(0, int(round(x))), max(0, int(round(y)))
    x1, y1 = min(photo.width, int(round(x + bw))), min(photo.height, int(round(y + bh)))
    return Face(box=(x0, y0, max(1, x1 - x0), max(1, y1 - y0)), score=full.score,
                quality=assess((photo.height, photo.width), full, crop), keypoints=full.keypoints, crop=crop)


def _to_full(d: Detection, sx: float, sy: float) -> Detection:
    """A detection made on a reduced decode, in the full photo's pixels (pixel centres map to pixel centres)."""
    if sx == 1 and sy == 1:
        return d
    kp = (d.keypoints.astype(np.float64) + 0.5) * np.array([sx, sy]) - 0.5
    x, y, w, h = d.box
    return Detection(box=(x * sx, y * sy, w * sx, h * sy), score=d.score, keypoints=kp.astype(np.float32))
