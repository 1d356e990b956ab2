"""FaceSim: is this the same person? Face detection, alignment and a triplet-trained encoder.

    >>> import facesim
    >>> result = facesim.compare("anchor.jpg", "a.jpg", "b.jpg")
    >>> result.matches, result.a.distance, result.b.distance
"""

from .api import Candidate, Comparison, Verification, compare, embed, extract_faces, verify
from .detect import Face
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

__all__ = [
    "load_image", "extract_faces", "embed", "verify", "compare", "load_encoder",
    "Face", "Verification", "Candidate", "Comparison", "Encoder",
    "FaceSimError", "InvalidImageError", "ImageTooLargeError", "ImageTooSmallError", "NoFaceFoundError",
    "WeightsError",
]
