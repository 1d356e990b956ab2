"""The public verbs: extract faces, embed them, and answer "same person?" for two or three photos."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Literal, Union

import numpy as np

from .align import DEFAULT_CHIP, Chip
from .anchors import AnchorSet, anchor_name, as_list, check_count, combine, outliers
from .errors import FaceSimError, WeightsError
from .faces import Face, faces_of
from .image import ImageSource, Photo, open_photo
from .model import Encoder, load_encoder
from .uncertainty import Judgement, likelihood

__all__ = ["extract_faces", "embed", "verify", "compare", "rank", "Face", "Verification", "Candidate", "Comparison",
           "Ranked"]

Weights = Union[str, Path, Encoder, None]
Verdict = Literal["match", "uncertain", "no match"]


@dataclass(frozen=True)
class Verification:
    """The answer to "are these two photos the same person?".

    Attributes:
        distance: Euclidean distance between the two unit embeddings (0 = identical, 2 = opposite).
        threshold: the same-person threshold used (calibrated on validation unless overridden).
        is_match: distance <= threshold.
        probability: calibrated probability that the two faces are the same person (the distance and the
            faces' quality together; `likelihood` says it in words).
        verdict: "match", "no match", or "uncertain" when the answer is likely enough to be wrong
            (`facesim.uncertainty`: the distance near the threshold, a small, turned, unclear or blurred face,
            a face outside what validation covered); then `reasons` says why and `advice` what would help.
        reasons: why the verdict is "uncertain", in words ("photo B: head turned (62 degrees)"); empty otherwise.
        advice: what would help when uncertain ("a photo of the person in photo B facing the camera").
        face_a, face_b: the faces compared.
        faces_found: how many faces each photo had.
        face_used: which face of each photo was compared (0-based, as `extract_faces` orders them): photo A's
            clearest face, and the face of photo B closest to it, unless chosen otherwise.
    """

    distance: float
    threshold: float
    is_match: bool
    probability: float
    verdict: Verdict
    face_a: Face = field(repr=False)
    face_b: Face = field(repr=False)
    faces_found: tuple[int, int] = (1, 1)
    reasons: tuple[str, ...] = ()
    face_used: tuple[int, int] = (0, 0)
    advice: tuple[str, ...] = ()
    #: The photos of A that answered (several when a list was given), and those left out.
    anchors: AnchorSet | None = field(default=None, repr=False, compare=False)

    @property
    def likelihood(self) -> str:
        """The probability in words ("probably the same person", "can't tell", ...)."""
        return likelihood(self.probability)

    def to_dict(self) -> dict:
        """The answer as plain JSON-ready values (no images); faces are numbered from 1."""
        return {"is_match": self.is_match, "distance": self.distance, "probability": self.probability,
                "likelihood": self.likelihood, "verdict": self.verdict, "reasons": list(self.reasons),
                "advice": list(self.advice), "threshold": self.threshold, **_anchors_dict(self.anchors),
                "faces_found": list(self.faces_found), "face_used": [i + 1 for i in self.face_used],
                "quality": {"A": self.face_a.quality.to_dict(), "B": self.face_b.quality.to_dict()}}


@dataclass(frozen=True)
class Candidate:
    """One candidate photo compared with the anchor (fields as in `Verification`)."""

    distance: float
    probability: float
    is_match: bool
    verdict: Verdict
    face: Face = field(repr=False)
    reasons: tuple[str, ...] = ()
    #: Every face of the photo, best first (the one used is `face`).
    faces: tuple[Face, ...] = field(default=(), repr=False, compare=False)
    #: Which of `faces` was compared (0-based): the one closest to the anchor's face unless one was chosen.
    index: int = 0
    #: What would help when the verdict is "uncertain".
    advice: tuple[str, ...] = ()

    @property
    def faces_found(self) -> int:
        return len(self.faces)

    @property
    def likelihood(self) -> str:
        """The probability in words ("probably the same person", "can't tell", ...)."""
        return likelihood(self.probability)

    @property
    def which(self) -> str:
        """The face used, in words: "face 2 of 3" (empty for a photo with one face)."""
        return f"face {self.index + 1} of {self.faces_found}" if self.faces_found > 1 else ""

    def to_dict(self) -> dict:
        return {"distance": self.distance, "probability": self.probability, "likelihood": self.likelihood,
                "is_match": self.is_match, "verdict": self.verdict, "reasons": list(self.reasons),
                "advice": list(self.advice), "faces_found": self.faces_found, "face_used": self.index + 1,
                "quality": self.face.quality.to_dict()}


@dataclass(frozen=True)
class Comparison:
    """The product's question: which of two candidates is the anchor's person?

    Attributes:
        threshold: the same-person distance threshold used.
        anchor: the anchor face used; anchor_faces: every face of the anchor photo, best first.
        a, b: the two candidates.
        matches: "A", "B", "both" or "neither" (by distance <= threshold).
    """

    threshold: float
    anchor: Face = field(repr=False)
    a: Candidate
    b: Candidate
    matches: Literal["A", "B", "both", "neither"]
    #: Every face of the anchor photo, best first (the one used is `anchor`).
    anchor_faces: tuple[Face, ...] = field(default=(), repr=False, compare=False)
    #: The photos of the anchor's person that answered (several when a list was given), and those left out.
    anchors: AnchorSet | None = field(default=None, repr=False, compare=False)

    @property
    def anchor_faces_found(self) -> int:
        return len(self.anchor_faces)

    def to_dict(self) -> dict:
        """The answer as plain JSON-ready values (no images): what the CLI prints and the app's API returns."""
        return {"matches": self.matches, "headline": self.headline, "threshold": self.threshold,
                "anchor_faces_found": self.anchor_faces_found, "anchor_quality": self.anchor.quality.to_dict(),
                **_anchors_dict(self.anchors), "A": self.a.to_dict(), "B": self.b.to_dict()}

    @property
    def summary(self) -> str:
        """The verdict in one sentence, without the reasons for uncertainty (naming the face of a group photo)."""
        a = f" ({self.a.which})" if self.a.which and self.a.is_match else ""
        b = f" ({self.b.which})" if self.b.which and self.b.is_match else ""
        return {
            "A": f"Candidate A{a} is the same person as the anchor",
            "B": f"Candidate B{b} is the same person as the anchor",
            "both": f"Both candidates{a}{b} are the same person as the anchor",
            "neither": "Neither candidate is the same person as the anchor",
        }[self.matches]

    @property
    def anchor_note(self) -> str:
        """How many photos of the anchor's person answered, and which were left out (empty for one photo)."""
        if self.anchors is None or self.anchors.photos == 1:
            return ""
        note = f"{self.anchors.count} of {self.anchors.photos} anchor photos answered"
        return note + (f" ({'; '.join(self.anchors.notes())})" if self.anchors.left_out else "")

    @property
    def headline(self) -> str:
        """The verdict in one sentence, with the reasons for uncertainty and what would help, if any."""
        if self.anchor_note:
            return f"{self._headline()}. {self.anchor_note[0].upper()}{self.anchor_note[1:]}"
        return self._headline()

    def _headline(self) -> str:
        reasons = list(dict.fromkeys(self.a.reasons + self.b.reasons))
        advice = list(dict.fromkeys(self.a.advice + self.b.advice))
        if not reasons:
            return self.summary
        return f"{self.summary} (uncertain: {'; '.join(reasons)}. What would help: {'; '.join(advice)})"


def _anchors_dict(anchors: AnchorSet | None) -> dict:
    """How many photos of the anchor's person answered, and which were left out and why (numbered from 1)."""
    if anchors is None:
        return {}
    return {"anchor_photos": anchors.photos, "anchor_photos_used": anchors.count,
            "anchor_photos_left_out": [{"photo": k + 1, "why": why} for k, why in anchors.left_out]}


def extract_faces(image: ImageSource, *, name: str | None = None, weights: Weights = None) -> list[Face]:
    """Every face in a photo, best first, each aligned and cropped for the encoder.

    "Best" weighs the detector's score and the face's size together, so a big patterned shirt does not
    beat a real face. A photo turned by a quarter without EXIF orientation is searched turned back.

    Args:
        image: file path, image bytes, or RGB uint8 array (H, W, 3).
        name: how error messages name this input.
        weights: the model whose chip the crops are cut for (see `embed`).

    Returns:
        A list of `Face` (box, score, keypoints, quality, aligned RGB uint8 crop), best first.

    Raises:
        FaceSimError: the image cannot be loaded (see `load_image`), or NoFaceFoundError.
    """
    label = name or (Path(image).name if isinstance(image, (str, Path)) else "image")
    return faces_in(open_photo(image, name=label), name=label, chip=load_encoder(weights).config.chip)


def faces_in(image: np.ndarray | Photo, *, name: str = "image", chip: Chip = DEFAULT_CHIP) -> list[Face]:
    """`extract_faces` on an already loaded RGB uint8 array (H, W, 3) or an opened `Photo`, cut for `chip`."""
    photo = image if isinstance(image, Photo) else Photo(name, image.shape[1], image.shape[0], pixels=image)
    (faces,) = faces_of([photo], chip=chip)
    if isinstance(faces, FaceSimError):
        raise faces
    return faces


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
    crops = np.stack([f.crop for f in faces])
    if crops.shape[1] != encoder.config.crop_size:
        raise WeightsError(f"these faces were cut for another model ({crops.shape[1]} px crops; this one takes "
                           f"{encoder.config.crop_size} px): extract them with extract_faces(..., weights=) of the "
                           "same model", input_name="faces")
    return encoder.embed_crops(crops)


def verify(image_a: ImageSource | Sequence[ImageSource], image_b: ImageSource, *, weights: Weights = None,
           threshold: float | None = None, face_index: tuple[int, int | None] = (0, None)) -> Verification:
    """Are two photos the same person? (1:1 check.)

    Photo A's clearest face is compared with every face of photo B, and the closest one is used: "is A's
    person in photo B?" (a group photo as B works). Photo A may be a list of 1-5 photos of one person:
    they answer together (`facesim.anchors`), each photo named "photo A", "photo A 2", ...

    Args:
        image_a: a file path, image bytes or RGB uint8 array (H, W, 3); or a list of 1-5 of them (one person).
        image_b: a file path, image bytes, or RGB uint8 array.
        weights: the model (see `embed`).
        threshold: override the calibrated distance threshold (with several photos of A, the threshold
            calibrated for that many moves by as much as this one moves the one-photo threshold).
        face_index: which face of each photo to use (0 = the clearest, as `extract_faces` orders them;
            for A, of its first photo; None for photo B: the face closest to photo A's).

    Raises:
        FaceSimError: a photo is not a usable image or holds no face; the message names "photo A"/"photo B".
    """
    encoder = load_encoder(weights)
    photos = as_list(image_a)
    check_count(photos)
    names = ["photo A"] + [f"photo A {k + 1}" for k in range(1, len(photos))]
    picked = _pick_all(photos + [image_b], names + ["photo B"], [face_index[0]] + [0] * (len(photos) - 1)
                       + [face_index[1]], encoder.config.chip, optional=range(1, len(photos)))
    all_b = picked[-1][1]
    anchors, rows = _anchor_set(encoder, picked[:-1], [all_b], names)
    k, d = _closest(anchors.vector, rows[0], face_index[1])
    fb = all_b[k]
    thr, judge = _calibrated(encoder, anchors.count, threshold)
    j = _judged(judge, d, thr, *_anchor_named(anchors, names), ("photo B", fb),
                crowded="photo B" if face_index[1] is None and _crowded(anchors.vector, rows[0], k, thr) else None)
    return Verification(distance=d, threshold=thr, is_match=d <= thr, probability=j.probability,
                        verdict=_verdict(d, thr, j), face_a=anchors.faces[0], face_b=fb,
                        faces_found=(len(picked[0][1]), len(all_b)), reasons=j.reasons, advice=j.advice,
                        face_used=(face_index[0] or 0, k), anchors=anchors)


def compare(anchor: ImageSource | Sequence[ImageSource], candidate_a: ImageSource, candidate_b: ImageSource, *,
            weights: Weights = None, threshold: float | None = None,
            face_index: tuple[int, int | None, int | None] = (0, None, None)) -> Comparison:
    """Which candidate shows the anchor's person: A, B, both or neither?

    The anchor's clearest face is compared with every face of each candidate photo (one batch), and each
    candidate is answered by its face closest to the anchor's: "is the anchor's person in this photo?",
    so a group photo works as a candidate. `Candidate.index` says which face that was.

    Several photos of the anchor's person (a list of 1-5) answer together: their faces are combined into
    one descriptor (`facesim.anchors`), with the threshold, probability and uncertain rule calibrated for
    that many photos. A photo without a face, or far from the others (another person), is left out and
    named in `Comparison.anchors.left_out`; only the first photo (the anchor itself) must have a face.

    Args:
        anchor: a file path, image bytes or RGB uint8 array (H, W, 3); or a list of 1-5 of them (one person).
        candidate_a, candidate_b: file paths, image bytes, or RGB uint8 arrays.
        weights: the model (see `embed`).
        threshold: override the calibrated distance threshold (see `verify`).
        face_index: which face of each photo to use (0 = the clearest, as `extract_faces` orders them; for
            the anchor, of its first photo); None for a candidate: its face closest to the anchor's.

    Returns:
        A `Comparison` with both distances, calibrated probabilities, per-candidate verdicts, the faces
        used, how many faces each photo had and which anchor photos answered.

    Raises:
        FaceSimError: a photo is not a usable image or holds no face; the message names "anchor",
            "candidate A" or "candidate B".
    """
    encoder = load_encoder(weights)
    photos = as_list(anchor)
    check_count(photos)
    names = [anchor_name(k) for k in range(len(photos))]
    anchor_index = 0 if face_index[0] is None else face_index[0]
    # The photos are decoded and searched in parallel (Pillow and OpenCV release the GIL).
    picked = _pick_all(photos + [candidate_a, candidate_b], names + ["candidate A", "candidate B"],
                       [anchor_index] + [0] * (len(photos) - 1) + [face_index[1], face_index[2]],
                       encoder.config.chip, optional=range(1, len(photos)))
    faces_a, faces_b = picked[-2][1], picked[-1][1]
    anchors, rows = _anchor_set(encoder, picked[:-2], [faces_a, faces_b], names)
    thr, judge = _calibrated(encoder, anchors.count, threshold)
    named_anchors = _anchor_named(anchors, names)
    cands = []
    for k, (name, faces) in enumerate((("candidate A", faces_a), ("candidate B", faces_b))):
        i, d = _closest(anchors.vector, rows[k], face_index[k + 1])
        j = _judged(judge, d, thr, *named_anchors, (name, faces[i]), pair=name,
                    crowded=name if face_index[k + 1] is None and _crowded(anchors.vector, rows[k], i, thr) else None)
        cands.append(Candidate(distance=d, probability=j.probability, is_match=d <= thr,
                               verdict=_verdict(d, thr, j), face=faces[i], faces=faces, index=i,
                               reasons=j.reasons, advice=j.advice))
    a, b = cands
    matches = {(True, True): "both", (True, False): "A", (False, True): "B", (False, False): "neither"}
    return Comparison(threshold=thr, anchor=anchors.faces[0], anchor_faces=picked[0][1], a=a, b=b,
                      matches=matches[(a.is_match, b.is_match)], anchors=anchors)


def _closest(anchor: np.ndarray, rows: np.ndarray, index: int | None) -> tuple[int, float]:
    """The row of `rows` nearest `anchor` (or row `index` when one was chosen) and its distance."""
    d = np.linalg.norm(rows - anchor[None], axis=1)
    i = int(np.argmin(d)) if index is None else index
    return i, float(d[i])


@dataclass(frozen=True)
class Ranked:
    """One photo of a gallery search (`rank`), compared with the anchor.

    Attributes:
        index: the photo's position in the `photos` given to `rank`.
        distance: distance to the anchor's face (None when the photo could not be used).
        probability: calibrated same-person probability (None when the photo could not be used).
        verdict: "match", "no match", "uncertain", or "error" when the photo could not be used.
        face: the face used: the photo's face closest to the anchor's (None when the photo could not be used).
        is_match: distance <= threshold (False when the photo could not be used).
        faces_found: how many faces the photo had (0 when none).
        face_used: which of them was used (0-based, as `extract_faces` orders them).
        reasons: why the verdict is "uncertain" (see `Verification.reasons`); advice: what would help.
        error: why the photo could not be used ("no face found", "not an image", ...), else None.
    """

    index: int
    distance: float | None
    probability: float | None
    verdict: Literal["match", "uncertain", "no match", "error"]
    face: Face | None = field(repr=False)
    faces_found: int = 0
    reasons: tuple[str, ...] = ()
    error: str | None = None

    is_match: bool = False
    face_used: int = 0
    advice: tuple[str, ...] = ()
    #: The photos of the anchor's person that answered (the same for every item of a search).
    anchors: AnchorSet | None = field(default=None, repr=False, compare=False)

    def to_dict(self) -> dict:
        return {"index": self.index, "distance": self.distance, "probability": self.probability,
                "likelihood": likelihood(self.probability) if self.probability is not None else None,
                "is_match": self.is_match, "verdict": self.verdict, "reasons": list(self.reasons),
                "advice": list(self.advice),
                "faces_found": self.faces_found, "face_used": self.face_used + 1 if self.face is not None else None,
                "error": self.error, "quality": self.face.quality.to_dict() if self.face is not None else None}


def rank(anchor: ImageSource | Sequence[ImageSource], photos: Sequence[ImageSource], *, weights: Weights = None,
         threshold: float | None = None, names: Sequence[str] | None = None,
         on_progress: Callable[[int, int], None] | None = None) -> list[Ranked]:
    """Which of these photos show the anchor's person? A gallery search, best match first.

    Each photo is decoded and searched once (in parallel) and all faces are embedded in one batch; each
    photo is ranked by its face closest to the anchor's (a group photo is found by any face). A photo
    that cannot be used (not an image, no face) is reported in its item, ranked last, instead of failing
    the whole search.

    Args:
        anchor: the photo of the person looked for (path, bytes or RGB uint8 array), or a list of 1-5 photos
            of that person, which answer together (see `compare`).
        photos: the photos to search (paths, bytes or RGB uint8 arrays).
        weights: the model (see `embed`).
        threshold: override the calibrated distance threshold (see `verify`).
        names: how error messages name each photo (default "photo 1", "photo 2", ...).
        on_progress: called with (photos searched, photos) as the search goes (for a progress bar).

    Returns:
        One `Ranked` per photo: usable photos by increasing distance, then unusable ones in input order.

    Raises:
        FaceSimError: the (first) anchor photo is not a usable image or holds no face (the message names "anchor").
    """
    encoder = load_encoder(weights)
    names = list(names) if names is not None else [f"photo {i + 1}" for i in range(len(photos))]
    chip = encoder.config.chip
    given = as_list(anchor)
    check_count(given)
    anchor_names = [anchor_name(k) for k in range(len(given))]
    picked_anchors = _pick_all(given, anchor_names, [0] * len(given), chip, optional=range(1, len(given)))

    picked = []
    for start in range(0, len(photos), RANK_CHUNK):  # chunks: one detector pass each, progress between them
        chunk = list(photos[start : start + RANK_CHUNK])
        picked += _pick_all(chunk, names[start : start + len(chunk)], [0] * len(chunk), chip,
                            optional=range(len(chunk)))
        if on_progress is not None:
            on_progress(len(picked), len(photos))
    usable = [i for i, r in enumerate(picked) if not isinstance(r, FaceSimError)]
    anchors, rows = _anchor_set(encoder, picked_anchors, [picked[i][1] for i in usable], anchor_names)
    thr, judge = _calibrated(encoder, anchors.count, threshold)
    named_anchors = _anchor_named(anchors, anchor_names)
    out = []
    for i, e in zip(usable, rows):
        faces = picked[i][1]
        k, d = _closest(anchors.vector, e, None)
        face = faces[k]
        j = _judged(judge, d, thr, *named_anchors, (names[i], face), pair=names[i],
                    crowded=names[i] if _crowded(anchors.vector, e, k, thr) else None)
        out.append(Ranked(index=i, distance=d, probability=j.probability, verdict=_verdict(d, thr, j),
                          face=face, faces_found=len(faces), reasons=j.reasons, advice=j.advice, is_match=d <= thr,
                          face_used=k, anchors=anchors))
    out.sort(key=lambda r: r.distance)
    for i, r in enumerate(picked):
        if isinstance(r, FaceSimError):
            message = str(r).split(": ", 1)[-1]
            out.append(Ranked(index=i, distance=None, probability=None, verdict="error", face=None,
                              faces_found=0, error=message, anchors=anchors))
    return out


#: A gallery search finds faces this many photos at a time (one detector pass each; progress after each).
RANK_CHUNK = 10


@lru_cache(maxsize=1)
def _pool() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=3, thread_name_prefix="facesim-extract")


def _pick(image: ImageSource, name: str, index: int | None,
          chip: Chip = DEFAULT_CHIP) -> tuple[Face, tuple[Face, ...]]:
    """The face at `index` of a photo (the clearest when None), and all its faces (best first)."""
    return _pick_all([image], [name], [index], chip)[0]


def _pick_all(photos: list, names: list[str], indices: list, chip: Chip, *, optional=()) -> list:
    """For each photo, (the face at its index, all its faces), with one detector pass for all the photos
    and the decoding spread over threads. A photo at a position in `optional` that fails gives its
    FaceSimError in its place; any other failure is raised (the first in the photos' order)."""
    optional = set(optional)

    def open_one(k):
        try:
            return open_photo(photos[k], name=names[k] or "image")
        except FaceSimError as exc:
            return exc

    opened = list(_pool().map(open_one, range(len(photos))))
    ok = [k for k, p in enumerate(opened) if not isinstance(p, FaceSimError)]
    found = dict(zip(ok, faces_of([opened[k] for k in ok], chip=chip, map_fn=_pool().map)))
    out = []
    for k in range(len(photos)):
        result = opened[k] if k not in found else found[k]
        if not isinstance(result, FaceSimError):
            faces, index = tuple(result), indices[k]
            if index is None:
                result = (faces[0], faces)
            elif 0 <= index < len(faces):
                result = (faces[index], faces)
            else:
                result = FaceSimError(f"face {index + 1} was asked for, but the photo has {len(faces)} face(s)",
                                      input_name=names[k])
        if isinstance(result, FaceSimError) and k not in optional:
            raise result
        out.append(result)
    return out


def _anchor_set(encoder: Encoder, picked: list, candidates: list[tuple[Face, ...]],
                names: list[str]) -> tuple[AnchorSet, list]:
    """Embed the anchor photos' faces with every candidate face (one batch) and combine the anchors.

    Returns:
        The AnchorSet and, per candidate photo, its faces' embeddings (n_faces, D).
    """
    ok = [k for k, r in enumerate(picked) if not isinstance(r, FaceSimError)]
    faces = [picked[k][0] for k in ok]
    e = encoder.embed_crops(np.stack([f.crop for f in faces] + [f.crop for c in candidates for f in c]))
    anchor_e, rest = e[: len(faces)], e[len(faces) :]
    left = [(k, str(picked[k]).split(": ", 1)[-1]) for k, r in enumerate(picked) if isinstance(r, FaceSimError)]
    far = outliers(anchor_e, encoder.config.outlier_limits)
    left += [(ok[i], "looks like another person (far from the other photos)") for i in far]
    keep = [i for i in range(len(ok)) if i not in far]
    anchors = AnchorSet(faces=tuple(faces[i] for i in keep), used=tuple(ok[i] for i in keep),
                        left_out=tuple(sorted(left)), photos=len(picked), vector=combine(anchor_e[keep]),
                        names=tuple(names))
    rows, start = [], 0
    for c in candidates:
        rows.append(rest[start : start + len(c)])
        start += len(c)
    return anchors, rows


def _anchor_named(anchors: AnchorSet, names: list[str]) -> list[tuple[str, Face]]:
    return [(names[k], face) for k, face in zip(anchors.used, anchors.faces)]


def _threshold(encoder: Encoder, threshold: float | None) -> float:
    if threshold is not None:
        return float(threshold)
    if encoder.config.threshold is None:
        raise WeightsError("the model has no calibrated threshold; run python -m training.evaluate on it",
                           input_name="weights")
    return float(encoder.config.threshold)


def _calibrated(encoder: Encoder, count: int, threshold: float | None):
    """(threshold, judge) for `count` anchor photos; an overridden threshold moves the calibrated one by as
    much as it moves the one-photo threshold."""
    if count == 1:
        return _threshold(encoder, threshold), encoder.config.judging
    thr, judge = encoder.config.for_anchors(count)
    if threshold is not None:
        thr += float(threshold) - _threshold(encoder, None)
    return thr, judge


def _judged(judge, distance: float, threshold: float, *named: tuple[str, Face], pair: str | None = None,
            crowded: str | None = None) -> Judgement:
    """The probability, and whether and why the answer is uncertain (`facesim.uncertainty`).

    `pair` names the comparison when several are answered at once ("candidate B"): the distance reason
    then says which.
    """
    if judge is None:  # an uncalibrated model: no probability, nothing to doubt with
        return Judgement(probability=float("nan"), doubt=float("nan"), confident=True)
    j = judge.judge(distance, [(name, _person(name), face.quality) for name, face in named], threshold=threshold,
                    crowded=crowded)
    if pair and j.reasons:
        reasons = tuple(f"{pair}: {r}" if r.startswith("distance ") else r for r in j.reasons)
        j = replace(j, reasons=reasons)
    return j


def _person(name: str) -> str:
    """Whom a photo shows, for advice: "the anchor's person", "the person in candidate A"."""
    return "the anchor's person" if name.startswith("anchor") else f"the person in {name}"


def _crowded(anchor: np.ndarray, rows: np.ndarray, used: int, threshold: float) -> bool:
    """Another face of the photo is also within the threshold of the anchor: two people there look like it."""
    if len(rows) < 2:
        return False
    d = np.linalg.norm(rows - anchor[None], axis=1)
    return bool(d[used] <= threshold and np.sum(d <= threshold) >= 2)


def _verdict(distance: float, threshold: float, judgement: Judgement) -> Verdict:
    if not judgement.confident:
        return "uncertain"
    return "match" if distance <= threshold else "no match"
