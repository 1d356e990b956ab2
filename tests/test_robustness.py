"""Every bad or odd upload, through the library and the running app: the right error or the right answer,
and the server keeps answering. Plus property-based fuzzing: only FaceSimError may come out."""

from __future__ import annotations

import io
import zipfile

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image

import facesim
from conftest import lfw
from facesim import (FaceSimError, ImageTooLargeError, ImageTooSmallError, InvalidImageError, NoFaceFoundError)
from test_image import bomb_png

FACE = lfw("George_W_Bush", 1)
SAME = lfw("George_W_Bush", 2)
OTHER = lfw("Serena_Williams", 1)


def _save(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def face_variant(kind: str) -> bytes:
    img = Image.open(FACE)
    if kind == "grayscale":
        return _save(img.convert("L"), "PNG")
    if kind == "rgba":
        rgba = img.convert("RGBA")
        rgba.putalpha(Image.linear_gradient("L").resize(img.size).point(lambda v: 255 if v > 10 else 0))
        return _save(rgba, "PNG")
    if kind == "palette":
        return _save(img.convert("P", palette=Image.ADAPTIVE), "PNG")
    if kind == "16bit":
        arr = (np.asarray(img.convert("L")).astype(np.uint16) * 257)
        return _save(Image.fromarray(arr), "PNG")
    if kind == "cmyk":
        return _save(img.convert("CMYK"), "JPEG", quality=95)
    if kind == "exif_rotated":
        exif = Image.Exif()
        exif[0x0112] = 6
        return _save(img.rotate(90, expand=True), "JPEG", exif=exif.tobytes(), quality=95)
    if kind == "animated_gif":
        frames = [img.convert("RGB"), Image.new("RGB", img.size, "black")]
        return _save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=200)
    if kind == "big_6000x4000":
        canvas = Image.new("RGB", (6000, 4000), (120, 130, 140))
        canvas.paste(img.resize((2400, 2400), Image.BICUBIC), (1800, 800))
        return _save(canvas, "JPEG", quality=85)
    raise KeyError(kind)


def bad_input(kind: str) -> bytes:
    if kind == "text":
        return b"just some text, not a photo\n" * 10
    if kind == "pdf":
        return b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj << /Type /Catalog >> endobj\ntrailer << >>\n%%EOF\n"
    if kind == "zip_renamed_jpg":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("photo.jpg", "nothing")
        return buf.getvalue()
    if kind == "empty":
        return b""
    if kind == "truncated_jpeg":
        data = FACE.read_bytes()
        return data[: len(data) // 3]
    if kind == "corrupt_png":
        data = bytearray(_save(Image.open(FACE), "PNG"))
        data[100:400] = bytes(300)
        return bytes(data)
    if kind == "bomb_30000x30000":
        return bomb_png()
    if kind == "tiny_20x20":
        return _save(Image.new("RGB", (20, 20), "white"), "PNG")
    if kind == "video_mp4":
        return b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41" + bytes(2000)
    if kind == "blank":
        return _save(Image.new("RGB", (400, 300), "white"), "PNG")
    if kind == "landscape":
        y = np.linspace(0, 1, 300)[:, None, None]
        sky = (np.array([90, 150, 230]) * (1 - y) + np.array([60, 140, 60]) * y).astype(np.uint8)
        arr = np.repeat(sky, 400, axis=1)
        cv2.circle(arr, (320, 60), 30, (250, 230, 120), -1)
        pts = np.array([[0, 200], [120, 90], [260, 200]], np.int32)
        cv2.fillPoly(arr, [pts], (110, 100, 90))
        return _save(Image.fromarray(arr), "JPEG")
    if kind == "cat":
        arr = np.full((300, 300, 3), 235, np.uint8)
        cv2.circle(arr, (150, 170), 90, (120, 110, 100), -1)
        cv2.fillPoly(arr, [np.array([[75, 120], [90, 40], [130, 90]], np.int32),
                           np.array([[225, 120], [210, 40], [170, 90]], np.int32)], (120, 110, 100))
        for x in (115, 185):
            cv2.ellipse(arr, (x, 150), (14, 20), 0, 0, 360, (60, 170, 60), -1)
            cv2.ellipse(arr, (x, 150), (4, 16), 0, 0, 360, (10, 10, 10), -1)
        cv2.fillPoly(arr, [np.array([[140, 190], [160, 190], [150, 202]], np.int32)], (200, 120, 130))
        for dy in (-8, 0, 8):
            cv2.line(arr, (160, 200 + dy), (235, 195 + 2 * dy), (30, 30, 30), 1)
            cv2.line(arr, (140, 200 + dy), (65, 195 + 2 * dy), (30, 30, 30), 1)
        return _save(Image.fromarray(arr), "PNG")
    raise KeyError(kind)


BAD = {
    "text": (InvalidImageError, "not an image"),
    "pdf": (InvalidImageError, "not an image"),
    "zip_renamed_jpg": (InvalidImageError, "not an image"),
    "video_mp4": (InvalidImageError, "not an image"),
    "empty": (InvalidImageError, "file is empty"),
    "truncated_jpeg": (InvalidImageError, "corrupt or truncated"),
    "corrupt_png": (InvalidImageError, "corrupt or truncated"),
    "bomb_30000x30000": (ImageTooLargeError, "too large"),
    "tiny_20x20": (ImageTooSmallError, "20x20"),
    "blank": (NoFaceFoundError, "no face found"),
    "landscape": (NoFaceFoundError, "no face found"),
    "cat": (NoFaceFoundError, "no face found"),
}
GOOD = ["grayscale", "rgba", "palette", "16bit", "cmyk", "exif_rotated", "animated_gif", "big_6000x4000"]


@pytest.mark.parametrize("kind", sorted(BAD))
def test_library_bad_input_matrix(kind):
    cls, message = BAD[kind]
    with pytest.raises(cls, match=f"^candidate B: .*{message}"):
        facesim.compare(FACE, SAME, bad_input(kind))


@pytest.mark.parametrize("kind", GOOD)
def test_library_odd_but_valid_inputs_work(kind):
    r = facesim.compare(face_variant(kind), SAME, OTHER)
    assert r.matches == "A", (kind, r.a.distance, r.b.distance, r.threshold)


def test_same_photo_three_times_distance_zero():
    r = facesim.compare(FACE, FACE, FACE)
    assert r.a.distance < 1e-5 and r.b.distance < 1e-5 and r.matches == "both"


@pytest.fixture(scope="module")
def server():
    import app

    _, url, _ = app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True)
    yield url
    app.demo.close()


def test_app_bad_input_matrix_and_server_keeps_answering(server, tmp_path):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)

    def ask(a, b, c):
        return client.predict(handle_file(str(a)), handle_file(str(b)), handle_file(str(c)), api_name="/compare")

    for kind, (_, message) in sorted(BAD.items()):
        path = tmp_path / f"{kind}.jpg"
        path.write_bytes(bad_input(kind))
        with pytest.raises(Exception) as e:
            ask(FACE, path, OTHER)
        assert "candidate A photo" in str(e.value) and message in str(e.value), (kind, str(e.value))
        assert ask(FACE, SAME, OTHER)[-1]["matches"] == "A", f"server stopped answering after {kind}"
    for kind in ("rgba", "cmyk", "exif_rotated", "big_6000x4000"):
        path = tmp_path / f"{kind}.img"
        path.write_bytes(face_variant(kind))
        assert ask(path, SAME, OTHER)[-1]["matches"] == "A", kind


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=4096))
def test_random_bytes_only_facesim_errors(data):
    try:
        out = facesim.load_image(data)
    except FaceSimError:
        return
    assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(
    arrays(st.sampled_from([np.uint8, np.uint16, np.float32, np.int64, np.bool_]),
           st.tuples(st.integers(1, 90), st.integers(1, 90), st.sampled_from([1, 2, 3, 4]))),
    arrays(np.uint8, st.tuples(st.integers(1, 90), st.integers(1, 90))),
))
def test_random_arrays_only_facesim_errors(arr):
    try:
        facesim.compare(arr, FACE, FACE)
    except FaceSimError:
        pass


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(min_size=1, max_size=2048), st.integers(0, 5000))
def test_mutated_real_jpeg_only_facesim_errors(junk, at):
    data = bytearray(FACE.read_bytes())
    data[at : at + len(junk)] = junk
    try:
        facesim.compare(bytes(data), FACE, FACE)
    except FaceSimError:
        pass
