"""The Gradio app: the handler's verdicts and errors, the API through gradio_client, cache cleaning, load."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import lfw, png_bytes

os.environ["FACESIM_CACHE_SECONDS"] = "4"  # before app is imported: uploads are deleted after 4 s here
import app  # noqa: E402


def handler():
    return next(iter(app.demo.fns.values())).fn


def test_verdict_a_b_and_neither(trio):
    compare = handler()
    head, gallery, details, data = compare(str(trio["anchor"]), str(trio["same"]), str(trio["other"]))
    assert data["matches"] == "A" and "Candidate A is the same person" in head
    assert len(gallery) == 3 and all(np.asarray(Image.open(img)).shape == (160, 160, 3) for img, _ in gallery)
    assert "threshold" in details and f"{data['A']['distance']:.3f}" in details
    assert compare(str(trio["anchor"]), str(trio["other"]), str(trio["same"]))[3]["matches"] == "B"
    strangers = compare(str(trio["anchor"]), str(lfw("Serena_Williams", 2)), str(lfw("Jennifer_Aniston", 1)))
    assert strangers[3]["matches"] == "neither" and "Neither" in strangers[0]


def test_several_faces_are_reported_and_selectable(trio, tmp_path):
    from PIL import Image

    a, b = Image.open(trio["anchor"]), Image.open(trio["other"]).resize((170, 170))
    canvas = Image.new("RGB", (500, 300), "white")
    canvas.paste(a, (0, 25))
    canvas.paste(b, (300, 65))
    group = tmp_path / "group.png"
    canvas.save(group)
    compare = handler()
    head, _, _, data = compare(str(trio["anchor"]), str(group), str(trio["other"]))
    assert "2 faces found in the candidate A photo, using the largest" in head and data["matches"] in ("A", "both")
    head2, _, _, data2 = compare(str(trio["anchor"]), str(group), str(trio["other"]), None, 1, 2, 1)
    assert "using face 2" in head2
    assert data2["A"]["distance"] == pytest.approx(data["B"]["distance"], abs=0.05)  # face 2 is the other person


@pytest.mark.parametrize("which", [0, 1, 2])
def test_bad_inputs_become_gr_error_naming_the_photo(trio, tmp_path, which):
    compare = handler()
    good = [str(trio["anchor"]), str(trio["same"]), str(trio["other"])]
    names = ["anchor", "candidate A", "candidate B"]
    cases = {
        "text": tmp_path / "a.jpg", "blank": tmp_path / "blank.png", "tiny": tmp_path / "tiny.png",
    }
    cases["text"].write_text("hello")
    cases["blank"].write_bytes(png_bytes(np.full((200, 200, 3), 255, np.uint8)))
    cases["tiny"].write_bytes(png_bytes(np.zeros((20, 20, 3), np.uint8)))
    expected = {"text": "not an image", "blank": "no face", "tiny": "20x20"}
    for kind, path in cases.items():
        args = list(good)
        args[which] = str(path)
        with pytest.raises(gr.Error) as e:
            compare(*args)
        assert e.value.message.startswith(f"The {names[which]} photo: ") and expected[kind] in e.value.message
    args = list(good)
    args[which] = None
    with pytest.raises(gr.Error, match=f"add the {names[which]} photo"):
        compare(*args)


@pytest.fixture(scope="module")
def server():
    _, url, _ = app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", server_port=0 or None,
                                quiet=True)
    yield url
    app.demo.close()


def call(url, *paths):
    from gradio_client import Client, handle_file

    client = Client(url, verbose=False)
    return client.predict(*(handle_file(str(p)) for p in paths), api_name="/compare")


def test_api_compare_and_bad_input_then_server_still_answers(server, trio, tmp_path):
    head, gallery, _, data = call(server, trio["anchor"], trio["same"], trio["other"])
    assert data["matches"] == "A" and len(gallery) == 3
    assert data["A"]["distance"] < data["threshold"] < data["B"]["distance"]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(trio["same"].read_bytes()[:3000])
    with pytest.raises(Exception, match="candidate B photo: corrupt or truncated"):
        call(server, trio["anchor"], trio["same"], bad)
    assert call(server, trio["anchor"], trio["other"], trio["same"])[3]["matches"] == "B"


def test_uploads_are_deleted_from_the_cache(server, trio, tmp_path):
    marker = tmp_path / "privacy_marker_photo.jpg"
    marker.write_bytes(trio["anchor"].read_bytes())
    call(server, marker, trio["same"], trio["other"])
    cache = Path(app.demo.GRADIO_CACHE if hasattr(app.demo, "GRADIO_CACHE") else gr.utils.get_upload_folder())
    found = lambda: [p for p in cache.rglob("privacy_marker_photo*")]  # noqa: E731
    assert found(), "the upload should be in Gradio's cache while it is fresh"
    deadline = time.time() + 30
    while found() and time.time() < deadline:
        time.sleep(1)
    assert not found(), "uploads must not be kept"


def test_small_load_no_errors_and_correct_verdicts(server, trio):
    results, errors = [], []

    def client(k):
        try:
            for i in range(3):
                swap = (k + i) % 2
                paths = (trio["anchor"], trio["other"], trio["same"]) if swap else (trio["anchor"], trio["same"], trio["other"])
                results.append((swap, call(server, *paths)[3]["matches"]))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    assert len(results) == 12 and all(m == ("B" if swap else "A") for swap, m in results)
