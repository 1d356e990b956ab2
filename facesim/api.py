"""The public verbs: extract faces, embed them, and answer "same person?" for two or three photos."""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Literal, Union

import numpy as np

from .detect import Face, detect_faces
from .errors import FaceSimError, WeightsError
from .image import ImageSource, load_image
from .model import Encoder, load_encoder

__all__ = ["extract_faces", "embed", "verify", "compare", "Verification", "Candidate", "Comparison"]

Weights = Union[str, Path, Encoder, None]
Verdict = Literal["match", "uncertain", "no match"]


@dataclass(frozen=True)
class Verification:
    """The answer to "are these two photos the same person?".

    Attributes:
        distance: Euclidean distance between the two unit embeddings (0 = identical, 2 = opposite).
        threshold: the same-person threshold used (calibrated on validation unless overridden).
        is_match: distance <= threshold.
        probability: calibrated probability that the two faces are the same person.
        verdict: "match", "no match", or "uncertain" when the distance is close to the threshold.
        face_a, face_b: the faces compared.
        faces_found: how many faces each photo had (the largest is used unless chosen otherwise).
    """

    distance: float
    threshold: float
    is_match: bool
    probability: float
    verdict: Verdict
    face_a: Face = field(repr=False)
    face_b: Face = field(repr=False)
    faces_found: tuple[int, int] = (1, 1)

    def to_dict(self) -> dict:
        """The answer as plain JSON-ready values (no images)."""
        return {"is_match": self.is_match, "distance": self.distance, "probability": self.probability,
                "verdict": self.verdict, "threshold": self.threshold, "faces_found": list(self.faces_found)}


@dataclass(frozen=True)
class Candidate:
    """One candidate photo compared with the anchor (fields as in `Verification`)."""

    distance: float
    probability: float
    is_match: bool
    verdict: Verdict
    face: Face = field(repr=False)
    faces_found: int = 1

    def to_dict(self) -> dict:
        return {"distance": self.distance, "probability": self.probability, "is_match": self.is_match,
                "verdict": self.verdict, "faces_found": self.faces_found}


@dataclass(frozen=True)
class Comparison:
    """The product's question: which of two candidates is the anchor's person?

    Attributes:
        threshold: the same-person distance threshold used.
        anchor: the anchor face used; anchor_faces_found: how many faces the anchor photo had.
        a, b: the two candidates.
        matches: "A", "B", "both" or "neither" (by distance <= threshold).
    """

    threshold: float
    anchor: Face = field(repr=False)
    anchor_faces_found: int
    a: Candidate
    b: Candidate
    matches: Literal["A", "B", "both", "neither"]

    def to_dict(self) -> dict:
        """The answer as plain JSON-ready values (no images): what the CLI prints and the app's API returns."""
        return {"matches": self.matches, "headline": self.headline, "threshold": self.threshold,
                "anchor_faces_found": self.anchor_faces_found, "A": self.a.to_dict(), "B": self.b.to_dict()}

    @property
    def headline(self) -> str:
        return {
            "A": "Candidate A is the same person as the anchor",
            "B": "Candidate B is the same person as the anchor",
            "both": "Both candidates are the same person as the anchor",
            "neither": "Neither candidate is the same person as the anchor",
        }[self.matches]


def extract_faces(image: ImageSource, *, name: str | None = None) -> list[Face]:
    """Every face in a photo, largest first, each aligned and cropped for the encoder.

    Args:
        image: file path, image bytes, or RGB uint8 array (H, W, 3).
        name: how error messages name this input.

    Returns:
        A list of `Face` (box, score, eye landmarks if found, aligned RGB uint8 crop), largest first.

    Raises:
        FaceSimError: the image cannot be loaded (see `load_image`), or NoFaceFoundError.
    """
    label = name or (Path(image).name if isinstance(image, (str, Path)) else "image")
    return detect_faces(load_image(image, name=label), name=label)


def embed(faces: Face | Sequence[Face], *, weights: Weights = None) -> np.ndarray:
    """Embeddings of faces from `extract_faces`.

    Args:
        faces: one Face or a sequence of them.
        weights: a weights folder, "hf://user/name[@revision]", a loaded Encoder, or None (shipped weights).

    Returns:
        float32 array (N, embedding_dim) of unit vectors (N = 1 for a single Face).
    """
    encoder = load_encoder(weights)
    faces = [faces] if isinstance(faces, Face) else list(faces)
    if not faces:
        return np.zeros((0, encoder.config.embedding_dim), np.float32)
    return encoder.embed_crops(np.stack([f.crop for f in faces]))


def verify(image_a: ImageSource, image_b: ImageSource, *, weights: Weights = None,
           threshold: float | None = None, face_index: tuple[int, int] = (0, 0)) -> Verification:
    """Are two photos the same person? (1:1 check.)

    Args:
        image_a, image_b: file paths, image bytes, or RGB uint8 arrays (H, W, 3).
        weights: the model (see `embed`).
        threshold: override the calibrated distance threshold.
        face_index: which face of each photo to use (0 = largest).

    Raises:
        FaceSimError: a photo is not a usable image or holds no face; the message names "photo A"/"photo B".
    """
    encoder = load_encoder(weights)
    (fa, na), (fb, nb) = (_pick(image_a, "photo A", face_index[0]), _pick(image_b, "photo B", face_index[1]))
    e = encoder.embed_crops(np.stack([fa.crop, fb.crop]))
    thr = _threshold(encoder, threshold)
    d = float(np.linalg.norm(e[0] - e[1]))
    return Verification(distance=d, threshold=thr, is_match=d <= thr, probability=_probability(encoder, d),
                        verdict=_verdict(encoder, d, thr), face_a=fa, face_b=fb, faces_found=(na, nb))


def compare(anchor: ImageSource, candidate_a: ImageSource, candidate_b: ImageSource, *,
            weights: Weights = None, threshold: float | None = None,
            face_index: tuple[int, int, int] = (0, 0, 0)) -> Comparison:
    """Which candidate shows the anchor's person: A, B, both or neither?

    Args:
        anchor, candidate_a, candidate_b: file paths, image bytes, or RGB uint8 arrays (H, W, 3).
        weights: the model (see `embed`).
        threshold: override the calibrated distance threshold.
        face_index: which face of each photo to use (0 = largest).

    Returns:
        A `Comparison` with both distances, calibrated probabilities, per-candidate verdicts, the faces
        used and how many faces each photo had.

    Raises:
        FaceSimError: a photo is not a usable image or holds no face; the message names "anchor",
            "candidate A" or "candidate B".
    """
    encoder = load_encoder(weights)
    # The three photos are decoded and searched in parallel (Pillow and OpenCV release the GIL).
    picked = list(_pool().map(_pick, (anchor, candidate_a, candidate_b), ("anchor", "candidate A", "candidate B"),
                              face_index))
    e = encoder.embed_crops(np.stack([f.crop for f, _ in picked]))
    thr = _threshold(encoder, threshold)
    cands = []
    for k in (1, 2):
        d = float(np.linalg.norm(e[0] - e[k]))
        cands.append(Candidate(distance=d, probability=_probability(encoder, d), is_match=d <= thr,
                               verdict=_verdict(encoder, d, thr), face=picked[k][0], faces_found=picked[k][1]))
    a, b = cands
    matches = {(True, True): "both", (True, False): "A", (False, True): "B", (False, False): "neither"}
    return Comparison(threshold=thr, anchor=picked[0][0], anchor_faces_found=picked[0][1], a=a, b=b,
                      matches=matches[(a.is_match, b.is_match)])


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=3, thread_name_prefix="facesim-extract")


def _pick(image: ImageSource, name: str, index: int) -> tuple[Face, int]:
    faces = extract_faces(image, name=name)
    if not 0 <= index < len(faces):
        raise FaceSimError(f"face {index + 1} was asked for, but the photo has {len(faces)} face(s)",
                           input_name=name)
    return faces[index], len(faces)


def _threshold(encoder: Encoder, threshold: float | None) -> float:
    if threshold is not None:
        return float(threshold)
    if encoder.config.threshold is None:
        raise WeightsError("the model has no calibrated threshold; run python -m training.evaluate on it",
                           input_name="weights")
    return float(encoder.config.threshold)


def _probability(encoder: Encoder, distance: float) -> float:
    cal = encoder.config.calibration
    return cal.probability(distance) if cal is not None else float("nan")


def _verdict(encoder: Encoder, distance: float, threshold: float) -> Verdict:
    if abs(distance - threshold) < encoder.config.uncertain_margin:
        return "uncertain"
    return "match" if distance <= threshold else "no match"
