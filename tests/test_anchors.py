"""Several photos of the anchor's person: the library, the CLI and the app accept 1-5 anchor photos."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

import facesim
from conftest import ROOT, WEIGHTS, lfw
from facesim.anchors import combine, outliers

BUSH = [lfw("George_W_Bush", i) for i in (1, 3, 4, 5, 6)]


def test_three_anchor_photos_answer_together_at_their_own_threshold(trio):
    r = facesim.compare(BUSH[:3], trio["same"], trio["other"])
    assert r.matches == "A" and r.anchors.count == 3 and r.anchors.used == (0, 1, 2) and not r.anchors.left_out
    config = json.loads((WEIGHTS / "config.json").read_text())
    assert r.threshold == pytest.approx(config["anchor_sets"]["3"]["threshold"])
    assert r.threshold < config["threshold"]  # the mean descriptor's distances are shorter
    d = r.to_dict()
    assert d["anchor_photos"] == 3 and d["anchor_photos_used"] == 3 and d["anchor_photos_left_out"] == []
    assert "3 of 3 anchor photos answered" in r.headline
    # The distance is the candidate's to the mean descriptor of the three faces.
    e = facesim.embed([*r.anchors.faces, r.a.face])
    assert r.a.distance == pytest.approx(float(np.linalg.norm(e[-1] - combine(e[:3]))), abs=1e-5)


def test_a_list_of_one_photo_is_the_one_photo_path(trio):
    one = facesim.compare(trio["anchor"], trio["same"], trio["other"])
    listed = facesim.compare([trio["anchor"]], trio["same"], trio["other"])
    assert listed.a.distance == pytest.approx(one.a.distance) and listed.threshold == one.threshold
    assert listed.a.probability == pytest.approx(one.a.probability) and listed.headline == one.headline
    assert one.anchors.count == 1 and one.anchor_note == ""


def test_a_photo_without_a_face_or_of_someone_else_is_left_out_and_named(trio):
    blank = np.full((200, 200, 3), 128, np.uint8)
    r = facesim.compare([BUSH[0], blank, lfw("Serena_Williams", 2), BUSH[1]], trio["same"], trio["other"])
    assert r.anchors.used == (0, 3) and r.anchors.count == 2
    why = dict(r.anchors.left_out)
    assert why[1] == "no face found" and why[2].startswith("looks like another person")
    assert "anchor photo 2 left out: no face found" in r.anchor_note
    assert "anchor photo 3 left out: looks like another person" in r.anchor_note
    assert r.matches == "A"
    assert r.to_dict()["anchor_photos_left_out"][0] == {"photo": 2, "why": "no face found"}


def test_the_first_anchor_photo_must_have_a_face_and_at_most_five_are_taken(trio):
    blank = np.full((200, 200, 3), 128, np.uint8)
    with pytest.raises(facesim.NoFaceFoundError, match="^anchor: "):
        facesim.compare([blank, BUSH[0]], trio["same"], trio["other"])
    with pytest.raises(facesim.FaceSimError, match="1 to 5 photos"):
        facesim.compare(BUSH + [BUSH[0]], trio["same"], trio["other"])
    with pytest.raises(facesim.FaceSimError, match="1 to 5 photos"):
        facesim.verify([], trio["same"])


def test_verify_and_rank_take_anchor_sets(trio):
    v = facesim.verify(BUSH[:2], trio["same"])
    assert v.is_match and v.anchors.count == 2 and v.to_dict()["anchor_photos_used"] == 2
    ranked = facesim.rank(BUSH[:3], [trio["other"], trio["same"], lfw("Colin_Powell", 1)])
    assert ranked[0].index == 1 and ranked[0].is_match and not ranked[1].is_match


def test_outliers_are_tested_against_the_photos_kept():
    rng = np.random.default_rng(0)
    base = rng.normal(size=16)
    same = [base + rng.normal(scale=0.2, size=16) for _ in range(3)]
    other = rng.normal(size=16)
    v = np.array([x / np.linalg.norm(x) for x in same + [other]], np.float32)
    assert outliers(v, {1: 0.5, 2: 0.5, 3: 0.5}) == [3]
    assert outliers(v, None) == [] and outliers(v[:1], {1: 0.1}) == []


def test_cli_takes_a_repeatable_anchor(trio):
    out = subprocess.run([sys.executable, "-m", "facesim", "--anchor", str(BUSH[0]), "--anchor", str(BUSH[1]),
                          str(trio["same"]), str(trio["other"]), "--json"], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["matches"] == "A" and data["anchor_photos_used"] == 2
    two = subprocess.run([sys.executable, "-m", "facesim", "--anchor", str(BUSH[0]), "--anchor", str(BUSH[1]),
                          str(trio["same"])], cwd=ROOT, capture_output=True, text=True)
    assert two.returncode == 0 and "Same person" in two.stdout and "2 of 2 photos of A answered" in two.stdout
    bad = subprocess.run([sys.executable, "-m", "facesim", "--anchor", str(BUSH[0]), "a", "b", "c"], cwd=ROOT,
                         capture_output=True, text=True)
    assert bad.returncode == 2 and "one candidate photo (B) or two (A B)" in bad.stderr


@pytest.mark.slow
def test_three_anchor_photos_beat_one_on_real_photos():
    """Every 2nd wild validation pair whose person has 2 more photos: the anchor set is right more often."""
    from conftest import DATA
    from training.anchors import identities
    from training.data import wild_pairs

    pairs, same = wild_pairs(DATA / "celeba-wild-val")
    ident, group = identities(wild=DATA / "celeba-wild-val")
    by = {}
    for p, person in ident.items():
        by.setdefault(person, []).append(p)
    rng = np.random.default_rng(7)
    one, three = [], []
    for (a, b), s in list(zip(pairs, same))[::2]:
        pool = sorted(p for p in by[ident[a]] if p not in (a, b) and group[p] not in (group[a], group[b]))
        if len(pool) < 2:
            continue
        extra = [pool[i] for i in rng.choice(len(pool), 2, replace=False)]
        one.append(facesim.verify(a, b).is_match == s)
        three.append(facesim.verify([a, *extra], b).is_match == s)
    assert len(three) > 250
    assert np.mean(three) >= 0.965 and np.mean(three) > np.mean(one), (np.mean(three), np.mean(one))
