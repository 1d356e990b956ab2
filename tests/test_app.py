"""The Gradio app: the handler's verdicts and errors, the API through gradio_client, cache cleaning, load."""

from __future__ import annotations

import base64
import io
import os
import re
import threading
import time
from pathlib import Path

import gradio as gr
import numpy as np
import pytest
from PIL import Image

from conftest import inline_images, lfw, png_bytes

os.environ["FACESIM_CACHE_SECONDS"] = "4"  # before app is imported: uploads are deleted after 4 s here
import app  # noqa: E402


def handler(name: str = "compare"):
    return next(f.fn for f in app.demo.fns.values() if f.api_name == name)


def test_verdict_a_b_and_neither(trio):
    compare = handler()
    head, details, marked, data = compare(str(trio["anchor"]), str(trio["same"]), str(trio["other"]))
    assert data["matches"] == "A" and "Candidate A is the same person" in head
    size = app.facesim.load_encoder().config.crop_size  # the crops as the model saw them, inline in the details
    crops = [Image.open(io.BytesIO(base64.b64decode(u))) for u in re.findall(r"data:image/jpeg;base64,([^']+)", details)]
    assert len(crops) == 3 and all(np.asarray(c).shape == (size, size, 3) for c in crops)
    assert "Anchor" in details and f"A: {data['A']['distance']:.3f} (match)" in details
    assert "threshold" in details and f"{data['A']['distance']:.3f}" in details
    boxed = inline_images(marked)  # the three photos with their faces boxed, inline (no result files)
    assert len(boxed) == 3 and all(img.size == (250, 250) for img, _ in boxed)
    assert [c for _, c in boxed] == ["anchor: 1 face(s)", "A: 1 face(s)", "B: 1 face(s)"]
    assert compare(str(trio["anchor"]), str(trio["other"]), str(trio["same"]))[-1]["matches"] == "B"
    strangers = compare(str(trio["anchor"]), str(lfw("Serena_Williams", 2)), str(lfw("Jennifer_Aniston", 1)))
    assert strangers[-1]["matches"] == "neither" and "Neither" in strangers[0]


def test_several_faces_are_reported_and_selectable(trio, tmp_path):
    from PIL import Image

    a, b = Image.open(trio["anchor"]), Image.open(trio["other"]).resize((170, 170))
    canvas = Image.new("RGB", (500, 300), "white")
    canvas.paste(a, (0, 25))
    canvas.paste(b, (300, 65))
    group = tmp_path / "group.png"
    canvas.save(group)
    compare = handler()
    head, _, marked, data = compare(str(trio["anchor"]), str(group), str(trio["other"]))
    assert "2 faces found in the candidate A photo: compared with face 1 (the one most like the anchor)" in head
    assert data["matches"] in ("A", "both") and data["A"]["face_used"] == 1
    assert inline_images(marked)[1][1] == "A: 2 face(s)"
    # The marked photo shows two boxes: the face used in green, the other in yellow.
    pix = np.asarray(inline_images(marked)[1][0].convert("RGB")).reshape(-1, 3)
    assert (np.abs(pix - (29, 185, 84)).sum(1) < 30).sum() > 100 and (np.abs(pix - (255, 204, 0)).sum(1) < 30).sum() > 50
    head2, _, _, data2 = compare(str(trio["anchor"]), str(group), str(trio["other"]), None, 1, 2, 1)
    assert "compared with face 2 (as chosen)" in head2 and data2["A"]["face_used"] == 2
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
    head, details, marked, data = call(server, trio["anchor"], trio["same"], trio["other"])
    assert data["matches"] == "A" and len(inline_images(marked)) == 3 and details.count("data:image/jpeg;base64,") == 3
    assert data["A"]["distance"] < data["threshold"] < data["B"]["distance"]
    bad = tmp_path / "broken.jpg"
    bad.write_bytes(trio["same"].read_bytes()[:3000])
    with pytest.raises(Exception, match="candidate B photo: corrupt or truncated"):
        call(server, trio["anchor"], trio["same"], bad)
    assert call(server, trio["anchor"], trio["other"], trio["same"])[-1]["matches"] == "B"


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
                results.append((swap, call(server, *paths)[-1]["matches"]))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)

    threads = [threading.Thread(target=client, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    assert not errors
    assert len(results) == 12 and all(m == ("B" if swap else "A") for swap, m in results)


def test_gallery_search_handler_ranks_and_reports(trio, tmp_path):
    search = handler("rank")
    junk = tmp_path / "junk.jpg"
    junk.write_text("no")
    files = [str(trio["other"]), str(junk), str(lfw("George_W_Bush", 5)), str(trio["same"])]
    head, gallery, table, data = search(str(trio["anchor"]), files, None, progress=lambda *a, **k: None)
    assert head.startswith("## 2 of 4 photos")
    assert {data[0]["photo"], data[1]["photo"]} == {"George_W_Bush_0005.jpg", "George_W_Bush_0002.jpg"}
    assert data[-1]["photo"] == "junk.jpg" and data[-1]["verdict"] == "error" and "not an image" in table
    assert len(gallery) == 3
    with pytest.raises(gr.Error, match="add the photos"):
        search(str(trio["anchor"]), [], None, progress=lambda *a, **k: None)
    with pytest.raises(gr.Error, match="at most 50"):
        search(str(trio["anchor"]), [str(trio["same"])] * 51, None, progress=lambda *a, **k: None)


def test_explain_handler_draws_heat_maps(trio):
    explain = handler("explain")
    out = explain(str(trio["anchor"]), str(trio["same"]), str(trio["other"]))
    assert len(out) == 4 and "anchor vs A" in out[0][1] and "anchor vs B" in out[2][1]
    img = np.asarray(Image.open(out[0][0]).convert("RGB")).astype(int)
    assert img.shape == (240, 240, 3) and (img[..., 0] - img[..., 2]).std() > 5  # coloured, not a plain crop
    with pytest.raises(gr.Error, match="The candidate B photo: no face"):
        explain(str(trio["anchor"]), str(trio["same"]), str(_blank_png()))


def _blank_png():
    import tempfile

    path = Path(tempfile.mkdtemp()) / "blank.png"
    path.write_bytes(png_bytes(np.full((200, 200, 3), 255, np.uint8)))
    return path


def test_rank_api_through_gradio_client(server, trio):
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    head, gallery, table, data = client.predict(
        handle_file(str(trio["anchor"])), [handle_file(str(trio["other"])), handle_file(str(trio["same"]))],
        api_name="/rank")  # the threshold keeps its calibrated default
    assert data[0]["photo"].endswith(".jpg") and data[0]["is_match"] and not data[1]["is_match"]
    assert "1 of 2 photos" in head
    # The gallery tab takes more photos of the anchor's person too.
    head, _, _, data = client.predict(
        handle_file(str(trio["anchor"])), [handle_file(str(trio["other"])), handle_file(str(trio["same"]))],
        more_anchors=[handle_file(str(lfw("George_W_Bush", 3))), handle_file(str(lfw("George_W_Bush", 4)))],
        api_name="/rank")
    assert "1 of 2 photos" in head and "3 of 3 anchor photos answered" in head
    assert data[0]["is_match"] and "George_W_Bush" in data[0]["photo"]


def test_example_rows_are_redistributable_photos_and_run():
    rows = [[app.EXAMPLES_DIR / f for f in row] for row in app.EXAMPLES]
    assert all(p.is_file() for row in rows for p in row)
    readme = (app.EXAMPLES_DIR / "README.md").read_text()
    assert all(p.name in readme for row in rows for p in row)  # each file's provenance is recorded
    compare = handler()
    head, _, _, data = compare(*map(str, rows[0]))
    assert data["matches"] in ("A", "both", "neither", "B")


@pytest.mark.parametrize("row, answer, uncertain", list(zip(app.EXAMPLES, app.EXAMPLE_ANSWERS,
                                                             app.EXAMPLE_UNCERTAIN)))
def test_every_example_row_answers_correctly(row, answer, uncertain):
    """The clickable examples are what a new user tries first: each gives its right answer, confidently except
    where the row is there to show an uncertain answer, which then says why and what would help."""
    head, _, _, data = handler()(*(str(app.EXAMPLES_DIR / f) for f in row))
    assert data["matches"] == answer, head
    for key in ("A", "B"):
        assert (data[key]["verdict"] == "uncertain") == (key in uncertain), head
        assert bool(data[key]["advice"]) == (key in uncertain), head
    assert ("What would help" in head) == bool(uncertain), head


def test_api_compare_with_more_anchor_photos(server, trio):
    """The HTTP API takes more photos of the anchor's person; the answer says how many answered and which
    photo was left out, and the details show each anchor face used."""
    from gradio_client import Client, handle_file

    client = Client(server, verbose=False)
    more = [handle_file(str(lfw("George_W_Bush", 3))), handle_file(str(lfw("Serena_Williams", 2)))]
    head, details, _, data = client.predict(handle_file(str(trio["anchor"])), handle_file(str(trio["same"])),
                                            handle_file(str(trio["other"])), more_anchors=more, api_name="/compare")
    assert data["matches"] == "A" and data["anchor_photos"] == 3 and data["anchor_photos_used"] == 2
    assert data["anchor_photos_left_out"] == [{"photo": 3, "why": "looks like another person (far from the other photos)"}]
    assert "2 of 3 anchor photos answered (anchor photo 3 left out" in head
    assert "Anchor faces used (2)" in details and details.count("data:image/jpeg;base64,") == 5
    too_many = [handle_file(str(lfw("George_W_Bush", i))) for i in range(2, 7)]
    with pytest.raises(Exception, match="at most 4 more photos"):
        client.predict(handle_file(str(trio["anchor"])), handle_file(str(trio["same"])),
                       handle_file(str(trio["other"])), more_anchors=too_many, api_name="/compare")
    assert call(server, trio["anchor"], trio["same"], trio["other"])[-1]["matches"] == "A"  # still answering
