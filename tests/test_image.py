"""load_image: every supported kind of input, and a typed error naming the input for every bad one."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from conftest import png_bytes
from facesim import (FaceSimError, ImageTooLargeError, ImageTooSmallError, InvalidImageError, load_image)


def _rgb(h=64, w=48):
    rng = np.random.default_rng(0)
    return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)


def test_path_bytes_and_array_agree(face_path):
    a = load_image(face_path)
    b = load_image(face_path.read_bytes())
    c = load_image(a)
    assert a.shape == (250, 250, 3) and a.dtype == np.uint8
    assert np.array_equal(a, b) and np.array_equal(a, c)
    assert c is not a  # a copy, never a view


def test_grayscale_becomes_three_equal_channels():
    g = np.arange(64 * 64, dtype=np.uint8).reshape(64, 64)
    out = load_image(png_bytes(g))
    assert out.shape == (64, 64, 3)
    assert np.array_equal(out[:, :, 0], g) and np.array_equal(out[:, :, 2], g)
    assert np.array_equal(load_image(g), out)


def test_alpha_is_composited_on_white():
    rgba = np.zeros((40, 40, 4), np.uint8)
    rgba[..., 0] = 255
    rgba[:20, :, 3] = 255  # top half opaque red, bottom transparent
    out = load_image(png_bytes(rgba))
    assert tuple(out[5, 5]) == (255, 0, 0)
    assert tuple(out[35, 5]) == (255, 255, 255)
    assert np.array_equal(load_image(rgba), out)


def test_palette_with_transparency():
    img = Image.new("P", (40, 40), 0)
    img.putpalette([0, 0, 255] + [0, 255, 0] * 255)
    img.info["transparency"] = 0
    buf = io.BytesIO()
    img.save(buf, format="PNG", transparency=0)
    out = load_image(buf.getvalue())
    assert tuple(out[0, 0]) == (255, 255, 255)


def test_16_bit_png_is_scaled_to_8_bit():
    arr = np.full((40, 40), 65535, np.uint16)
    arr[:, :20] = 256 * 100
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    out = load_image(buf.getvalue())
    assert out[0, 30, 0] == 255 and out[0, 0, 0] == 100


def test_cmyk_jpeg():
    img = Image.new("CMYK", (48, 48), (0, 255, 255, 0))  # pure red in CMYK
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=95)
    out = load_image(buf.getvalue())
    r, g, b = out[24, 24].astype(int)
    assert r > 200 and g < 60 and b < 60


def test_exif_orientation_is_applied():
    arr = np.zeros((40, 60, 3), np.uint8)
    arr[:, :30] = 255  # left half white
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    out = load_image(buf.getvalue())
    assert out.shape == (60, 40, 3)  # portrait after applying the orientation
    assert out[5, 20].mean() > 200 and out[55, 20].mean() < 50


def test_animated_gif_gives_first_frame():
    frames = [Image.new("RGB", (40, 40), c) for c in ((255, 0, 0), (0, 0, 255))]
    buf = io.BytesIO()
    frames[0].save(buf, format="GIF", save_all=True, append_images=frames[1:], duration=100)
    out = load_image(buf.getvalue())
    assert out[0, 0, 0] > 200 and out[0, 0, 2] < 50


@pytest.mark.parametrize("data, message", [
    (b"hello, this is text", "not an image"),
    (b"%PDF-1.4\n1 0 obj\n<<>>\nendobj\n", "not an image"),
    (b"PK\x03\x04" + b"\x00" * 100, "not an image"),
    (b"", "empty"),
])
def test_not_an_image(data, message):
    with pytest.raises(InvalidImageError, match=message) as e:
        load_image(data, name="candidate A")
    assert str(e.value).startswith("candidate A: ")
    assert e.value.input_name == "candidate A"


def test_truncated_jpeg(face_path):
    data = face_path.read_bytes()
    with pytest.raises(InvalidImageError, match="corrupt or truncated"):
        load_image(data[: len(data) // 2], name="anchor")


def test_corrupt_png():
    data = bytearray(png_bytes(_rgb()))
    data[60:90] = b"\x00" * 30  # inside IDAT: breaks the zlib stream / CRC
    with pytest.raises(InvalidImageError):
        load_image(bytes(data))


def bomb_png(width=30000, height=30000) -> bytes:
    """A few-KB PNG whose header claims width x height pixels (a decompression bomb)."""
    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * (width + 1) * 4, 9)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def test_decompression_bomb_is_refused_from_the_header():
    import tracemalloc

    data = bomb_png()
    assert len(data) < 10_000
    tracemalloc.start()
    with pytest.raises(ImageTooLargeError, match="too large"):
        load_image(data, name="anchor")
    with pytest.raises(ImageTooLargeError, match="12000x8000"):  # under Pillow's guard: FaceSim's own check
        load_image(bomb_png(12000, 8000), name="anchor")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 20 * 2**20  # nothing near 900 MB was decoded


def test_tiny_image_is_refused():
    with pytest.raises(ImageTooSmallError, match="20x20"):
        load_image(png_bytes(_rgb(20, 20)))
    with pytest.raises(ImageTooSmallError):
        load_image(_rgb(20, 20))


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(InvalidImageError, match="cannot read"):
        load_image(tmp_path / "nope.jpg")
    with pytest.raises(InvalidImageError, match="not a file"):
        load_image(tmp_path)


@pytest.mark.parametrize("bad", [
    np.zeros((64, 64, 2), np.uint8), np.zeros((64,), np.uint8), np.zeros((64, 64, 3), np.complex64),
    np.full((64, 64, 3), np.nan, np.float32),
])
def test_unusable_arrays(bad):
    with pytest.raises(InvalidImageError):
        load_image(bad)


def test_wrong_type():
    with pytest.raises(FaceSimError, match="expected a file path"):
        load_image(12345)


def test_errors_are_value_errors():
    assert issubclass(FaceSimError, ValueError)
    for cls in (InvalidImageError, ImageTooLargeError, ImageTooSmallError):
        assert issubclass(cls, FaceSimError)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_fast_jpeg_decode_equals_pillow_for_every_exif_orientation(orientation):
    """Complete JPEGs are decoded by OpenCV: pixel for pixel what Pillow + exif_transpose give."""
    import io

    from PIL import Image, ImageOps

    from conftest import exif_jpeg

    base = np.zeros((60, 90, 3), np.uint8)
    base[:20, :30] = (255, 0, 0)
    base[40:, 60:] = (0, 0, 255)
    data = exif_jpeg(base, orientation)
    want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
    got = load_image(data)
    assert got.shape == want.shape and np.array_equal(got, want)
    assert got.shape[:2] == ((90, 60) if orientation >= 5 else (60, 90))


def test_fast_jpeg_decode_equals_pillow_on_real_photos():
    import io

    from PIL import Image, ImageOps

    from conftest import WILD

    for path in sorted(WILD.glob("*.jpg"))[:10]:
        data = path.read_bytes()
        want = np.asarray(ImageOps.exif_transpose(Image.open(io.BytesIO(data))).convert("RGB"))
        assert np.array_equal(load_image(data), want), path.name
