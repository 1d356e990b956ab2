"""Candidates with several faces: the anchor's person is found anywhere in a group photo (compare, verify, rank,
the CLI and the app), on the public-domain group example and on composites of real LFW photos."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import facesim
from conftest import ROOT, lfw

EXAMPLES = ROOT / "examples"
GROUP = EXAMPLES / "GROUP_obama_biden_2012_official_portrait.jpg"


def composite(path, *people: Path, size: int = 250) -> Path:
    """Real LFW photos side by side on one canvas: a group photo whose every face is known."""
    canvas = Image.new("RGB", (size * len(people) + 40, size + 60), (235, 235, 235))
    for k, p in enumerate(people):
        canvas.paste(Image.open(p).resize((size, size)), (20 + k * size, 30))
    canvas.save(path)
    return path


@pytest.fixture(scope="module")
def pair_photo(tmp_path_factory) -> Path:
    """Serena Williams on the left, George W Bush on the right (both LFW test people)."""
    return composite(tmp_path_factory.mktemp("group") / "pair.png", lfw("Serena_Williams", 1),
                     lfw("George_W_Bush", 1))


def _centre_x(face) -> float:
    return face.box[0] + face.box[2] / 2


def test_the_group_example_finds_biden_as_face_2():
    """The case that answered "neither" before: Biden anchor, the Obama-Biden portrait as A, Obama as B."""
    r = facesim.compare(EXAMPLES / "biden_A_2010_blue_room.jpg", GROUP, EXAMPLES / "obama_C_2010_blue_room.jpg")
    assert r.matches == "A" and r.a.verdict == "match"
    assert r.a.faces_found == 2 and r.a.index == 1 and r.a.which == "face 2 of 2"  # face 1 (clearest) is Obama
    assert "Candidate A (face 2 of 2) is the same person" in r.summary
    assert r.to_dict()["A"]["face_used"] == 2
    # The other face of the group photo is Obama: the Obama anchor picks face 1 of the same photo.
    o = facesim.compare(EXAMPLES / "obama_A_2012_official_portrait.jpg", GROUP, EXAMPLES / "biden_A_2010_blue_room.jpg")
    assert o.matches == "A" and o.a.index == 0


def test_lfw_composite_uses_the_face_closest_to_the_anchor(pair_photo):
    r = facesim.compare(lfw("George_W_Bush", 2), pair_photo, lfw("Serena_Williams", 2))
    assert r.matches == "A" and r.a.faces_found == 2
    assert _centre_x(r.a.face) > 290  # the right-hand face: Bush
    r2 = facesim.compare(lfw("Serena_Williams", 2), pair_photo, lfw("George_W_Bush", 2))
    assert r2.matches == "A" and _centre_x(r2.a.face) < 270  # the same photo, now the left-hand face
    # Pinning a face still works: Bush's anchor against Serena's face only is no match.
    pinned = facesim.compare(lfw("George_W_Bush", 2), pair_photo, lfw("Serena_Williams", 2),
                             face_index=(0, r2.a.index, None))
    assert not pinned.a.is_match and pinned.a.index == r2.a.index


def test_a_group_of_strangers_is_still_no_match(tmp_path):
    strangers = composite(tmp_path / "strangers.png", lfw("Tony_Blair", 1), lfw("Angelina_Jolie", 1),
                          lfw("Colin_Powell", 1))
    r = facesim.compare(lfw("George_W_Bush", 2), strangers, lfw("Serena_Williams", 1))
    assert r.a.faces_found == 3 and r.matches == "neither"


def test_verify_and_rank_look_at_every_face(pair_photo, tmp_path):
    v = facesim.verify(lfw("George_W_Bush", 2), pair_photo)
    assert v.is_match and v.faces_found == (1, 2) and v.to_dict()["face_used"][1] == v.face_used[1] + 1
    ranked = facesim.rank(lfw("George_W_Bush", 2), [lfw("Tony_Blair", 1), pair_photo, lfw("Colin_Powell", 1)])
    assert ranked[0].index == 1 and ranked[0].is_match and ranked[0].faces_found == 2
    assert _centre_x(ranked[0].face) > 290 and ranked[0].to_dict()["face_used"] == ranked[0].face_used + 1


def test_cli_names_the_face_used(pair_photo):
    out = subprocess.run([sys.executable, "-m", "facesim", str(lfw("George_W_Bush", 2)), str(pair_photo),
                          str(lfw("Serena_Williams", 2))], capture_output=True, text=True, cwd=ROOT, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "Candidate A (face" in out.stdout and "of 2)" in out.stdout
    js = subprocess.run([sys.executable, "-m", "facesim", str(lfw("George_W_Bush", 2)), str(pair_photo),
                         str(lfw("Serena_Williams", 2)), "--json"], capture_output=True, text=True, cwd=ROOT,
                        timeout=120)
    data = json.loads(js.stdout)
    assert data["matches"] == "A" and data["A"]["faces_found"] == 2 and data["A"]["face_used"] in (1, 2)


def test_faces_cut_for_another_model_are_refused(tiny_weights):
    faces = facesim.extract_faces(lfw("George_W_Bush", 1))  # cut for the shipped encoder
    small = facesim.extract_faces(lfw("George_W_Bush", 1), weights=tiny_weights)
    assert faces[0].crop.shape != small[0].crop.shape
    with pytest.raises(facesim.WeightsError, match="cut for another model"):
        facesim.embed(faces, weights=tiny_weights)
    assert facesim.embed(small, weights=tiny_weights).shape == (1, 16)
    assert np.isfinite(facesim.embed(faces)).all()


def test_the_app_boxes_the_face_that_answered_in_green():
    """The issue's case in the app: "Candidate A (face 2 of 2)", and the green box is around face 2 (Biden)."""
    import app

    compare = next(f.fn for f in app.demo.fns.values() if f.api_name == "compare")
    head, details, marked, data = compare(str(EXAMPLES / "biden_A_2010_blue_room.jpg"), str(GROUP),
                                             str(EXAMPLES / "obama_C_2010_blue_room.jpg"))
    assert data["matches"] == "A" and data["A"]["face_used"] == 2 and data["A"]["faces_found"] == 2
    assert "Candidate A (face 2 of 2) is the same person" in head and "2 of 2" in details
    faces = facesim.extract_faces(GROUP)
    from conftest import inline_images

    boxed = np.asarray(inline_images(marked)[1][0].convert("RGB")).astype(int)
    scale = boxed.shape[1] / Image.open(GROUP).width
    green = np.argwhere(np.abs(boxed - (29, 185, 84)).sum(axis=2) < 40)  # (row, col) of the green outline
    assert len(green) > 200
    centre = green.mean(axis=0)[::-1] / scale  # back to the photo's pixels, (x, y)
    dist = [np.hypot(*(centre - (f.box[0] + f.box[2] / 2, f.box[1] + f.box[3] / 2))) for f in faces]
    assert int(np.argmin(dist)) == 1  # the green box is face 2's
