"""Image loading: any path, bytes or array becomes one RGB uint8 HxWx3 array, or a typed error."""

from __future__ import annotations

import io
import os
import warnings
from pathlib import Path
from typing import Union

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from .errors import ImageTooLargeError, ImageTooSmallError, InvalidImageError

__all__ = ["ImageSource", "load_image", "open_photo", "Photo", "MAX_PIXELS", "MAX_BYTES", "MIN_SIDE"]

ImageSource = Union[str, os.PathLike, bytes, bytearray, np.ndarray]

#: Largest image accepted, in pixels (a 48 MP phone photo fits; a decompression bomb does not).
MAX_PIXELS = 50_000_000
#: Largest file accepted, in bytes.
MAX_BYTES = 50 * 1024 * 1024
#: Smallest side, in pixels, of an image that can hold a recognisable face.
MIN_SIDE = 32

# FaceSim checks the pixel count itself, from the header; a truncated file must fail, not half-load.
ImageFile.LOAD_TRUNCATED_IMAGES = False


def load_image(src: ImageSource, *, name: str | None = None) -> np.ndarray:
    """Load an image as RGB uint8.

    Grayscale, palette, 16-bit and CMYK images are converted; alpha is composited on white; the EXIF
    orientation is applied; an animated image (GIF, WebP, ...) gives its first frame.

    Args:
        src: a file path, the raw bytes of an image file, or an array: uint8 or uint16, HxW (gray),
            HxWx1, HxWx3 (RGB order) or HxWx4 (RGBA).
        name: how error messages name this input (default: the file name, or "image").

    Returns:
        np.ndarray of shape (H, W, 3), dtype uint8, RGB order. A new array (never a view of `src`).

    Raises:
        InvalidImageError: not an image, unreadable, corrupt or truncated, or an unsupported array.
        ImageTooLargeError: more than `MAX_PIXELS` pixels (refused from the header) or `MAX_BYTES`.
        ImageTooSmallError: a side shorter than `MIN_SIDE` pixels.
    """
    if isinstance(src, np.ndarray):
        label = name or "image"
        rgb = _array_to_rgb(src, label)
    elif isinstance(src, (bytes, bytearray, memoryview, str, os.PathLike)):
        photo = open_photo(src, name=name)  # a complete JPEG through libjpeg, anything else through Pillow
        label, rgb = photo.name, photo.at(1)
    else:
        raise InvalidImageError(
            f"expected a file path, image bytes or a numpy array, got {type(src).__name__}",
            input_name=name or "image",
        )
    _check_size(rgb.shape[1], rgb.shape[0], label)
    return rgb


#: The reduced decodes libjpeg offers (DCT scaling): 1/1, 1/2, 1/4, 1/8.
REDUCTIONS = (1, 2, 4, 8)
_REDUCED_FLAG = {2: "IMREAD_REDUCED_COLOR_2", 4: "IMREAD_REDUCED_COLOR_4", 8: "IMREAD_REDUCED_COLOR_8"}


class Photo:
    """A photo decoded only at the sizes the work asks for (issue 21: detection needs 192 px, a chip 150).

    A complete colour or grey JPEG is decoded by OpenCV's libjpeg (about 3x faster than Pillow here, and at
    full size pixel for pixel what Pillow gives: tests/test_image.py), at 1/2, 1/4 or 1/8 of its size when
    asked (DCT scaling: the IDCT and colour conversion shrink with it, the result area-averaged, not aliased);
    any other image is decoded once, in full. Every check and message is `load_image`'s, made before any
    pixel is decoded; the EXIF orientation is applied at every size.

    Attributes:
        width, height: the full photo's size, as oriented (what `load_image` returns).
        name: how error messages name it.
    """

    def __init__(self, name: str, width: int, height: int, *, data: bytes | None = None, orient=None,
                 pixels: np.ndarray | None = None):
        self.name, self.width, self.height = name, width, height
        self._data, self._orient = data, orient
        self._decoded: dict[int, np.ndarray] = {} if pixels is None else {1: pixels}

    @property
    def reductions(self) -> tuple[int, ...]:
        """The reductions `at` can decode directly (1 only, for anything but a complete JPEG)."""
        return REDUCTIONS if self._data is not None else (1,)

    def reduction_for(self, side: float) -> int:
        """The largest available reduction that keeps the longer side at least `side` pixels."""
        longer = max(self.width, self.height)
        return max(r for r in self.reductions if r == 1 or longer / r >= side)

    def has(self, reduction: int) -> bool:
        """Whether the photo is already decoded at 1/`reduction`."""
        return reduction in self._decoded

    def at(self, reduction: int = 1) -> np.ndarray:
        """The photo as RGB uint8 (H, W, 3) at 1/`reduction` of its size (cached; 1: the full photo).

        Raises:
            InvalidImageError: the JPEG's data is corrupt (the message `load_image` gives for it).
        """
        if reduction not in self.reductions:
            reduction = 1
        if reduction not in self._decoded:
            self._decoded[reduction] = self._decode_at(reduction)
        return self._decoded[reduction]

    def _decode_at(self, reduction: int) -> np.ndarray:
        import cv2

        flag = cv2.IMREAD_COLOR if reduction == 1 else getattr(cv2, _REDUCED_FLAG[reduction])
        arr = cv2.imdecode(np.frombuffer(self._data, np.uint8), flag | cv2.IMREAD_IGNORE_ORIENTATION)
        if arr is not None:
            arr = cv2.cvtColor(arr, cv2.COLOR_BGR2RGB)
            if self._orient is not None:
                arr = np.ascontiguousarray(self._orient(arr))
        want = (-(-self.height // reduction), -(-self.width // reduction))
        if arr is None or arr.shape[:2] != want:  # libjpeg refused it: Pillow decodes it or says what is wrong
            full = _decode(self._data, self.name)
            self._data, self._decoded = None, {1: full}
            return full
        return arr

    def scale_of(self, pixels: np.ndarray) -> tuple[float, float]:
        """Full-photo pixels per pixel of `pixels` (one of this photo's decodes), along x and y."""
        return self.width / pixels.shape[1], self.height / pixels.shape[0]


def open_photo(src: ImageSource, *, name: str | None = None) -> Photo:
    """A `Photo` for lazy, size-aware decoding: the same inputs, checks and errors as `load_image`.

    A complete RGB or grey JPEG (what phones and cameras write) is checked from its header and decoded later,
    at the size asked; anything else is decoded now, in full, exactly as `load_image` decodes it.
    """
    if isinstance(src, (bytes, bytearray, memoryview)):
        label = name or "image"
        data = bytes(src)
    elif isinstance(src, (str, os.PathLike)):
        label = name or Path(src).name
        data = _read_file(Path(src), label)
    else:
        pixels = load_image(src, name=name)
        return Photo(name or "image", pixels.shape[1], pixels.shape[0], pixels=pixels)
    jpeg = _jpeg_header(data, label)
    if jpeg is None:
        pixels = _decode(data, label)
        _check_size(pixels.shape[1], pixels.shape[0], label)
        return Photo(label, pixels.shape[1], pixels.shape[0], pixels=pixels)
    width, height, orientation = jpeg
    turn = _ORIENT.get(orientation)
    if orientation in (5, 6, 7, 8):
        width, height = height, width
    return Photo(label, width, height, data=data, orient=turn)


def _jpeg_header(data: bytes, label: str) -> tuple[int, int, int] | None:
    """(width, height, EXIF orientation) of a complete RGB or grey JPEG that passes the size checks; None for
    anything `_decode` must handle itself (other formats, CMYK, truncated files, bad headers)."""
    if not data or len(data) > MAX_BYTES or not data.startswith(b"\xff\xd8"):
        return None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            if img.format != "JPEG" or img.mode not in ("RGB", "L") or not data.rstrip(b"\0").endswith(b"\xff\xd9"):
                return None
            _check_size(img.width, img.height, label)  # from the header, before any pixel is decoded
            return img.width, img.height, int(img.getexif().get(0x0112, 1) or 1)
    except (ImageTooLargeError, ImageTooSmallError):
        raise
    except Exception:  # noqa: BLE001 - anything odd in the header: the full decode path reports it properly
        return None


def _read_file(path: Path, label: str) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InvalidImageError(f"cannot read file ({exc.strerror or exc})", input_name=label) from None
    if not path.is_file():
        raise InvalidImageError("is not a file", input_name=label)
    if size > MAX_BYTES:
        raise ImageTooLargeError(
            f"file is {size / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB", input_name=label
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidImageError(f"cannot read file ({exc.strerror or exc})", input_name=label) from None


def _check_size(width: int, height: int, label: str) -> None:
    if width * height > MAX_PIXELS:
        raise ImageTooLargeError(
            f"image is {width}x{height} ({width * height / 1e6:.0f} MP); "
            f"the limit is {MAX_PIXELS / 1e6:.0f} MP",
            input_name=label,
        )
    if min(width, height) < MIN_SIDE:
        raise ImageTooSmallError(
            f"image is {width}x{height}; a face needs at least {MIN_SIDE}x{MIN_SIDE} pixels",
            input_name=label,
        )


def _decode(data: bytes, label: str) -> np.ndarray:
    if not data:
        raise InvalidImageError("file is empty", input_name=label)
    if len(data) > MAX_BYTES:
        raise ImageTooLargeError(
            f"file is {len(data) / 2**20:.0f} MB; the limit is {MAX_BYTES // 2**20} MB", input_name=label
        )
    try:
        with warnings.catch_warnings():
            # Pillow warns before its own bomb check; FaceSim checks the header size itself below.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            _check_size(img.width, img.height, label)  # from the header, before any pixel is decoded
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            img = ImageOps.exif_transpose(img)
            return _pil_to_rgb(img, label)
    except (ImageTooLargeError, ImageTooSmallError, InvalidImageError):
        raise
    except UnidentifiedImageError:
        raise InvalidImageError("not an image (unrecognised file format)", input_name=label) from None
    except Image.DecompressionBombError:
        # Pillow's own guard fires in open() for headers far beyond its limit, before FaceSim's check.
        raise ImageTooLargeError(f"image is too large (its header claims far more than "
                                 f"{MAX_PIXELS / 1e6:.0f} MP); refused without decoding", input_name=label) from None
    except (OSError, SyntaxError, ValueError, EOFError, IndexError, TypeError, KeyError) as exc:
        # Pillow signals truncated and corrupt data with these.
        raise InvalidImageError(f"corrupt or truncated image ({exc})", input_name=label) from None


#: EXIF orientation -> the same transform as `ImageOps.exif_transpose`, on an (H, W, C) array.
_ORIENT = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _pil_to_rgb(img: Image.Image, label: str) -> np.ndarray:
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _array_to_rgb(np.asarray(img), label)
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode in ("LA", "PA", "La", "RGBa"):
        img = img.convert("RGBA")
    if img.mode == "RGBA":
        white = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, img)
    if img.mode != "RGB":
        img = img.convert("RGB")  # L, 1, CMYK, YCbCr, LAB, HSV
    return np.array(img, dtype=np.uint8)


def _array_to_rgb(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
        raise InvalidImageError(
            f"array of shape {arr.shape} is not an image (expected HxW, HxWx1, HxWx3 or HxWx4)",
            input_name=label,
        )
    if arr.size == 0:
        raise InvalidImageError("array is empty", input_name=label)
    _check_size(arr.shape[1], arr.shape[0], label)
    arr = _to_uint8(arr, label)
    if arr.ndim == 2:
        return np.repeat(arr[:, :, None], 3, axis=2)
    if arr.shape[2] == 4:
        alpha = arr[:, :, 3:4].astype(np.float32) / 255.0
        rgb = arr[:, :, :3].astype(np.float32) * alpha + 255.0 * (1.0 - alpha)
        return np.clip(rgb + 0.5, 0, 255).astype(np.uint8)
    return np.ascontiguousarray(arr, dtype=np.uint8).copy()


def _to_uint8(arr: np.ndarray, label: str) -> np.ndarray:
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.uint16:
        return (arr >> 8).astype(np.uint8)
    if arr.dtype in (np.int32, np.int64, np.uint32):  # Pillow's 32-bit integer mode, 16-bit PNGs
        top = 65535 if arr.max(initial=0) > 255 else 255
        return np.clip(arr.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)
    if arr.dtype in (np.float32, np.float64) and np.isfinite(arr).all():
        top = 1.0 if arr.max(initial=0) <= 1.0 else 255.0
        return np.clip(arr * (255.0 / top) + 0.5, 0, 255).astype(np.uint8)
    raise InvalidImageError(f"unsupported array dtype {arr.dtype}", input_name=label)
