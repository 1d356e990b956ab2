"""FaceSim: is this the same person? Face detection, alignment and a triplet-trained encoder.

    >>> import facesim
    >>> result = facesim.compare("anchor.jpg", "a.jpg", "b.jpg")
    >>> result.matches, result.a.distance, result.b.distance
"""

from .anchors import MAX_ANCHORS, AnchorSet
from .api import Candidate, Comparison, Face, Ranked, Verification, compare, embed, extract_faces, rank, verify
from .explain import Explanation, explain
from .errors import (
    FaceSimError,
    ImageTooLargeError,
    ImageTooSmallError,
    InvalidImageError,
    NoFaceFoundError,
    WeightsError,
)
from .image import load_image
from .model import Encoder, load_encoder
from .quality import Quality
from .uncertainty import likelihood

__all__ = [
    "load_image", "extract_faces", "embed", "verify", "compare", "rank", "explain", "load_encoder",
    "Face", "Quality", "Verification", "Ranked", "Explanation", "Candidate", "Comparison", "Encoder",
    "FaceSimError", "InvalidImageError", "ImageTooLargeError", "ImageTooSmallError", "NoFaceFoundError",
    "WeightsError", "likelihood", "AnchorSet", "MAX_ANCHORS",
]
