"""Anchor sets: several photos of the anchor's person answering together as one descriptor.

The photos' clearest faces are embedded and combined into their mean descriptor (re-normalised to unit
length): chosen on validation over the mean, the minimum and a quality-weighted mean of the distances
(docs/accuracy.md, `python -m training.anchors`). A photo without a face, or whose face lies far from the
others' (another person, most likely), is left out and named; the first photo is the anchor itself and is
never left out. The threshold, the probability and the uncertain rule are calibrated for each number of
photos (config.json "anchor_sets"), because the mean descriptor's distances are shorter than one photo's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

__all__ = ["AnchorSet", "MAX_ANCHORS", "combine", "outliers", "anchor_name"]

#: Most photos of the anchor's person a question takes.
MAX_ANCHORS = 5


def anchor_name(k: int) -> str:
    """How messages name anchor photo k (0-based): "anchor", "anchor photo 2", ..."""
    return "anchor" if k == 0 else f"anchor photo {k + 1}"


def combine(vectors: np.ndarray) -> np.ndarray:
    """The mean of unit descriptors (N, D), re-normalised to unit length (one photo: itself)."""
    v = np.asarray(vectors, np.float32)
    if len(v) == 1:
        return v[0]
    m = v.mean(0)
    return (m / max(float(np.linalg.norm(m)), 1e-12)).astype(np.float32)


def outliers(vectors: np.ndarray, limits: dict[int, float] | None) -> list[int]:
    """Which photos (beyond the first) lie farther from the mean descriptor of the others than the limit for
    that many others: a different person, most likely.

    The photo farthest beyond its limit goes first, then the rest are tested again without it (so that one
    stranger does not drag a genuine photo out with it); the first photo, the anchor itself, always stays.
    """
    if not limits or len(vectors) < 2:
        return []
    out: list[int] = []
    while True:
        kept = [i for i in range(len(vectors)) if i not in out]
        worst, excess = None, 0.0
        for k in kept[1:]:
            others = [i for i in kept if i != k]
            limit = limits.get(len(others))
            if limit is None:
                continue
            d = float(np.linalg.norm(vectors[k] - combine(vectors[others])))
            if d - limit > excess:
                worst, excess = k, d - limit
        if worst is None:
            return sorted(out)
        out.append(worst)


@dataclass(frozen=True)
class AnchorSet:
    """The anchor's person as the photos given show them.

    Attributes:
        faces: the face used from each photo that answered, in the photos' order (the first is the anchor's).
        used: which photos answered (0-based positions in the photos given).
        left_out: (position, why) of each photo that was left out ("no face found", "looks like another person").
        photos: how many photos were given.
        vector: the combined unit descriptor (D,).
        names: how messages name each photo given ("anchor", "anchor photo 2", ...).
    """

    faces: tuple = field(repr=False)
    used: tuple[int, ...]
    left_out: tuple[tuple[int, str], ...]
    photos: int
    vector: np.ndarray = field(repr=False, compare=False)
    names: tuple[str, ...] = ()

    @property
    def count(self) -> int:
        """How many photos answered."""
        return len(self.used)

    def notes(self) -> list[str]:
        """The photos left out, in words ("anchor photo 3 left out: no face found")."""
        return [f"{self.names[k] if k < len(self.names) else anchor_name(k)} left out: {why}" for k, why in self.left_out]


def as_list(anchor) -> list:
    """One anchor photo or a list/tuple of 1-MAX_ANCHORS of them, as a list."""
    return list(anchor) if isinstance(anchor, (list, tuple)) else [anchor]


def check_count(photos: Sequence) -> None:
    from .errors import FaceSimError

    if not 1 <= len(photos) <= MAX_ANCHORS:
        raise FaceSimError(f"give 1 to {MAX_ANCHORS} photos of the anchor's person ({len(photos)} given)",
                           input_name="anchor")
