"""`python -m facesim`: the verdict for three photos, a 1:1 check for two, exit 2 on a bad input."""

from __future__ import annotations

import json
import subprocess
import sys

from conftest import ROOT


def run(*args):
    return subprocess.run([sys.executable, "-m", "facesim", *map(str, args)], cwd=ROOT, capture_output=True,
                          text=True, timeout=300)


def test_three_photos_json(trio):
    r = run(trio["anchor"], trio["same"], trio["other"], "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["matches"] == "A" and out["A"]["distance"] < out["threshold"] < out["B"]["distance"]
    assert 0 <= out["A"]["probability"] <= 1


def test_two_photos_text(trio):
    r = run(trio["anchor"], trio["other"])
    assert r.returncode == 0 and r.stdout.startswith("Different people")


def test_bad_input_exit_2(trio, tmp_path):
    bad = tmp_path / "notes.jpg"
    bad.write_text("not really a jpeg")
    r = run(trio["anchor"], bad, trio["other"])
    assert r.returncode == 2
    assert "candidate A: not an image" in r.stderr and "Traceback" not in r.stderr


def test_rank_json_same_person_first_and_bad_photo_listed(trio, tmp_path):
    from conftest import lfw

    bad = tmp_path / "notes.jpg"
    bad.write_text("not an image")
    r = run("rank", trio["anchor"], trio["other"], bad, lfw("George_W_Bush", 5), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out[0]["photo"].endswith("George_W_Bush_0005.jpg") and out[0]["is_match"]
    assert out[-1]["photo"] == str(bad) and "not an image" in out[-1]["error"]


def test_rank_text_and_anchor_error(trio, tmp_path):
    r = run("rank", trio["anchor"], trio["same"], trio["other"])
    assert r.returncode == 0 and r.stdout.splitlines()[0].strip().startswith("1. ") and "match" in r.stdout
    bad = tmp_path / "anchor.jpg"
    bad.write_text("no")
    r = run("rank", bad, trio["same"])
    assert r.returncode == 2 and "anchor: not an image" in r.stderr and "Traceback" not in r.stderr
