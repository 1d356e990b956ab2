"""The faster paths give the same answers: reduced JPEG decodes (facesim.image.Photo), one detector pass for a
request's photos (facesim.detect.detect_many), and LiteRT beside OpenCV's DNN module (facesim.dnn)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

import facesim
from conftest import WILD, exif_jpeg, lfw
from facesim.api import faces_in
from facesim.detect import detect, detect_many
from facesim.image import load_image, open_photo

#: What "the same chip" means for a reduced decode (measured on the 207 wild validation photos of 1,024 px and
#: more, docs/benchmarks.md): embedding distance to the full decode's chip at most 0.10 for every photo and a
#: median at most 0.05; keypoints jittered by one pixel move it as much (median 0.036, p95 0.067).
MAX_CHIP_DISTANCE = 0.10
MEDIAN_CHIP_DISTANCE = 0.05


def _big_wild_photos(n: int) -> list:
    return [p for p in sorted(WILD.glob("*.jpg")) if max(Image.open(p).size) >= 1024][:n]


def test_chips_from_reduced_decodes_match_the_full_decode_on_real_photos():
    encoder = facesim.load_encoder()
    chip = encoder.config.chip
    distances, reduced = [], 0
    for path in _big_wild_photos(40):
        photo = open_photo(path)
        fast = faces_in(photo, chip=chip)[0]
        full = faces_in(load_image(path), chip=chip)[0]
        reduced += not photo.has(1)  # nothing decoded at full size: the reduced decode did all the work
        assert np.abs(np.array(fast.box) - np.array(full.box)).max() <= 8, path.name  # the same face
        assert abs(fast.quality.eye_distance - full.quality.eye_distance) < 0.05 * full.quality.eye_distance + 1
        e = encoder.embed_crops(np.stack([fast.crop, full.crop]))
        distances.append(float(np.linalg.norm(e[0] - e[1])))
    assert len(distances) == 40 and reduced >= 20, reduced  # the reduced path was exercised, not vacuous
    assert max(distances) <= MAX_CHIP_DISTANCE and np.median(distances) <= MEDIAN_CHIP_DISTANCE, distances


@pytest.mark.parametrize("orientation", range(1, 9))
def test_reduced_decodes_apply_the_exif_orientation(orientation):
    """Every reduction is the full decode, oriented as load_image orients it, at 1/2, 1/4 or 1/8."""
    base = np.zeros((480, 640, 3), np.uint8)
    base[:160, :240] = (255, 0, 0)
    base[320:, 480:] = (0, 0, 255)
    data = exif_jpeg(base, orientation)
    photo = open_photo(data)
    full = load_image(data)
    assert (photo.height, photo.width) == full.shape[:2] and photo.reductions == (1, 2, 4, 8)
    for r in (2, 4, 8):
        small = photo.at(r)
        assert small.shape[:2] == (-(-full.shape[0] // r), -(-full.shape[1] // r))
        shrunk = np.asarray(Image.fromarray(full).resize(small.shape[1::-1], Image.BOX), np.int16)
        assert np.abs(small.astype(np.int16) - shrunk).mean() < 4, r  # the same picture, the same way up
    assert np.array_equal(photo.at(1), full)


def test_bad_inputs_fail_with_the_messages_of_load_image(face_path, tmp_path):
    data = face_path.read_bytes()
    cases = {"truncated.jpg": data[:3000], "empty.jpg": b"", "text.jpg": b"hello, not a picture",
             "corrupt.jpg": data[:600] + bytes(len(data) - 602) + b"\xff\xd9"}
    for name, blob in cases.items():
        (tmp_path / name).write_bytes(blob)
        with pytest.raises(facesim.FaceSimError) as want:
            load_image(tmp_path / name, name="candidate A")
        with pytest.raises(facesim.FaceSimError) as got:
            photo = open_photo(tmp_path / name, name="candidate A")
            photo.at(photo.reduction_for(512))
        assert type(got.value) is type(want.value) and str(got.value) == str(want.value), name
    tiny = io.BytesIO()
    Image.new("RGB", (20, 20)).save(tiny, "JPEG")
    with pytest.raises(facesim.ImageTooSmallError, match="^candidate B: image is 20x20"):
        open_photo(tiny.getvalue(), name="candidate B")


def test_one_detector_pass_finds_what_one_pass_each_finds():
    images = [load_image(lfw("George_W_Bush", 1)), load_image(lfw("Serena_Williams", 1)),
              np.full((200, 300, 3), 90, np.uint8), np.ascontiguousarray(np.rot90(load_image(lfw("Tony_Blair", 1))))]
    together = detect_many(images)
    assert [len(f) > 0 for f in together] == [True, True, False, True]  # the blank finds nothing; the turned one
    for image, found in zip(images, together):
        if not found:
            with pytest.raises(facesim.NoFaceFoundError):
                detect(image)
            continue
        alone = detect(image)
        assert len(alone) == len(found)
        for a, b in zip(alone, found):
            np.testing.assert_allclose(a.keypoints, b.keypoints, atol=0.05)
            assert abs(a.score - b.score) < 1e-4


def test_litert_and_opencv_find_the_same_faces(face_path):
    from facesim.detect import FULL_RANGE, _detect_batch
    from facesim.dnn import lent_model

    image = load_image(face_path)
    sq = np.random.default_rng(0).uniform(-1, 1, (2, 192, 192, 3)).astype(np.float32)
    path = str(facesim.detect.detector_file(FULL_RANGE.file))
    with lent_model(path, "litert") as lite, lent_model(path, "opencv") as cv:
        a, b = lite.run(sq), cv.run(sq)
    key = lambda outs: sorted((np.asarray(o, np.float32).reshape(-1, o.shape[-1]) for o in outs), key=lambda v: v.shape[-1])
    for x, y in zip(key(a), key(b)):
        np.testing.assert_allclose(x, y, atol=2e-3)
    assert _detect_batch([image], 0.55)[0]
