"""Typed errors: every input problem FaceSim reports is a `FaceSimError` naming the input."""

from __future__ import annotations

__all__ = [
    "FaceSimError",
    "InvalidImageError",
    "ImageTooLargeError",
    "ImageTooSmallError",
    "NoFaceFoundError",
    "WeightsError",
]


class FaceSimError(ValueError):
    """Base of every error FaceSim raises for a bad input.

    Attributes:
        input_name: which input failed ("anchor", "candidate A", a file name, ...).
    """

    def __init__(self, message: str, *, input_name: str | None = None):
        self.input_name = input_name
        super().__init__(f"{input_name}: {message}" if input_name else message)


class InvalidImageError(FaceSimError):
    """The input is not a readable image (wrong type, not an image, corrupt or truncated)."""


class ImageTooLargeError(FaceSimError):
    """The image has more pixels than FaceSim accepts (checked from the header, before decoding)."""


class ImageTooSmallError(FaceSimError):
    """The image is too small to hold a face that can be recognised."""


class NoFaceFoundError(FaceSimError):
    """No face was detected in the image."""


class WeightsError(FaceSimError):
    """A weights folder is missing, incomplete, or its files are invalid."""
