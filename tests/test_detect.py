"""Face extraction on real LFW photos and synthetic edge cases."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from conftest import lfw
from facesim import Face, NoFaceFoundError, extract_faces, load_image
from facesim.detect import CROP_SIZE, center_crop_face

PEOPLE = ["George_W_Bush", "Serena_Williams", "Colin_Powell", "Tony_Blair", "Gerhard_Schroeder",
          "Jennifer_Aniston", "Hugo_Chavez", "Laura_Bush"]


def test_faces_found_in_real_photos():
    found = 0
    for name in PEOPLE:
        faces = extract_faces(lfw(name, 1))
        assert faces and all(isinstance(f, Face) for f in faces)
        x, y, w, h = faces[0].box
        # The deep-funneled face is centred and about 100-140 px wide.
        assert 80 <= w <= 170 and abs(x + w / 2 - 125) < 30 and abs(y + h / 2 - 125) < 35
        assert faces[0].crop.shape == (CROP_SIZE, CROP_SIZE, 3) and faces[0].crop.dtype == np.uint8
        found += 1
    assert found == len(PEOPLE)


def test_largest_first_and_several_faces():
    a, b = load_image(lfw("George_W_Bush", 1)), load_image(lfw("Serena_Williams", 1))
    small = np.asarray(Image.fromarray(b).resize((170, 170)))
    canvas = np.full((300, 500, 3), 255, np.uint8)
    canvas[25:275, 0:250] = a
    canvas[65:235, 300:470] = small
    faces = extract_faces(canvas)
    assert len(faces) == 2
    assert faces[0].box[2] > faces[1].box[2]
    assert faces[0].box[0] < 250 <= faces[1].box[0]


@pytest.mark.parametrize("image", [np.full((200, 200, 3), 255, np.uint8),
                                   np.random.default_rng(0).integers(0, 256, (200, 200, 3), dtype=np.uint8)],
                         ids=["blank", "noise"])
def test_no_face(image):
    with pytest.raises(NoFaceFoundError, match="no face") as e:
        extract_faces(image, name="candidate B")
    assert e.value.input_name == "candidate B"


def test_exif_rotated_portrait_is_found_upright(face_path):
    img = Image.open(face_path).rotate(-90, expand=True)  # stored sideways...
    exif = Image.Exif()
    exif[0x0112] = 8  # ...and tagged "rotate 90 CCW to display" (phones do this)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", exif=exif.tobytes(), quality=95)
    faces = extract_faces(buf.getvalue())
    upright = extract_faces(face_path)
    assert abs(faces[0].box[0] - upright[0].box[0]) <= 6 and abs(faces[0].box[1] - upright[0].box[1]) <= 6


def test_big_photo_crop_matches_small(face_path):
    img = load_image(face_path)
    big = np.asarray(Image.fromarray(img).resize((2000, 2000), Image.BICUBIC))
    f_small, f_big = extract_faces(img)[0], extract_faces(big)[0]
    assert abs(f_big.box[2] / 8 - f_small.box[2]) < 12
    diff = np.abs(f_big.crop.astype(int) - f_small.crop.astype(int)).mean()
    assert diff < 25


@pytest.mark.parametrize("name, i", [("Gerhard_Schroeder", 2), ("Donald_Rumsfeld", 3)])
def test_tilted_face_is_levelled(name, i):
    img = Image.open(lfw(name, i))
    upright = extract_faces(np.asarray(img))[0]
    tilted = extract_faces(np.asarray(img.rotate(12, resample=Image.BICUBIC)))[0]  # 12 degrees anticlockwise
    assert upright.landmarks is not None and tilted.landmarks is not None
    assert abs((tilted.angle - upright.angle) + 12) < 4  # the eye line tilted by -12 degrees, and is levelled


def test_center_crop_fallback():
    f = center_crop_face(np.zeros((250, 250, 3), np.uint8))
    assert f.score == 0 and f.crop.shape == (CROP_SIZE, CROP_SIZE, 3)
