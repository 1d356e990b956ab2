"""The real page in Debian's chromium, driven by Playwright: compare, explain, faces boxed, examples, gallery,
the phone layout (390x844) and the webcam on both screens."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from PIL import Image

from conftest import ROOT, lfw

CHROMIUM = os.environ.get("FACESIM_CHROMIUM", "/usr/bin/chromium")
SHOTS = ROOT / "docs"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_url():
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium)")
    import app

    _, url, _ = app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, **app.STYLE)
    yield url
    app.demo.close()


#: Chromium as the probe starts it here: no sandbox (root), no GPU, no background connections.
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def playwright():
    """One Playwright for the module (a second sync_playwright inside the first is refused)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def page(page_url, playwright):
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    try:
        pg = browser.new_page(viewport={"width": 1280, "height": 1000})
        pg.outside = []  # the page must work offline: nothing may be fetched from other hosts
        pg.on("request", lambda r: None if r.url.startswith((page_url.rstrip("/"), "data:", "blob:"))
              else pg.outside.append(r.url))
        pg.goto(page_url, wait_until="domcontentloaded")
        yield pg
    finally:
        browser.close()


def _upload(page, key: str, path) -> None:
    page.locator(f"#photo-{key} input[type=file]").set_input_files(str(path))
    page.locator(f"#photo-{key} img").first.wait_for(timeout=30_000)


def test_group_photo_faces_are_boxed_and_numbered(page, trio, tmp_path):
    a, b = Image.open(trio["anchor"]), Image.open(trio["other"]).resize((170, 170))
    canvas = Image.new("RGB", (560, 300), "white")
    canvas.paste(a, (0, 25))
    canvas.paste(b, (330, 65))
    group = tmp_path / "group.jpg"
    canvas.save(group, quality=95)
    _upload(page, "anchor", trio["same"])
    _upload(page, "a", group)
    _upload(page, "b", trio["other"])
    page.locator("#compare").click()
    page.locator("#verdict").get_by_text("2 faces found in the candidate A photo").wait_for(timeout=60_000)
    marked = page.locator("#marked")
    marked.get_by_text("A: 2 face(s)").first.wait_for(timeout=30_000)
    assert marked.locator("img").count() >= 3


def test_example_row_compare_and_explain(page):
    """One click on the first example fills the three photos; Compare answers; Explain draws four heat maps."""
    page.locator("#examples [data-testid=dataset-cell-0-0]").click()
    for key in ("anchor", "a", "b"):
        page.locator(f"#photo-{key} img").first.wait_for(timeout=30_000)
    page.locator("#compare").click()
    page.locator("#verdict").get_by_text("Candidate A is the same person as the anchor").wait_for(timeout=60_000)
    page.locator("#details img").nth(2).wait_for(timeout=30_000)  # the three crops, inline
    page.locator("#marked img").nth(2).wait_for(timeout=30_000)
    page.locator("#explain").click()
    page.locator("#heat img").nth(3).wait_for(timeout=60_000)
    assert page.locator("#heat img").count() >= 4
    page.wait_for_timeout(500)
    # Public-domain photos (examples/README.md): this screenshot needs no blurring.
    page.screenshot(path=str(SHOTS / "screenshot.png"), full_page=True)
    assert not page.outside, f"the page fetched from the internet: {page.outside[:5]}"


def test_gallery_tab_ranks_the_same_person_first(page):
    page.get_by_role("tab", name="Gallery search").click()
    page.locator("#gallery-anchor input[type=file]").set_input_files(str(lfw("George_W_Bush", 1)))
    page.locator("#gallery-anchor img").first.wait_for(timeout=30_000)
    files = [lfw("Serena_Williams", 1), lfw("Colin_Powell", 1), lfw("George_W_Bush", 5), lfw("Tony_Blair", 1),
             lfw("George_W_Bush", 2), lfw("Jennifer_Aniston", 1)]
    page.locator("#gallery-files input[type=file]").set_input_files([str(f) for f in files])
    page.locator("#gallery-files").get_by_text("Jennifer_Aniston_0001").wait_for(timeout=30_000)
    page.locator("#search").click()
    table = page.locator("#gallery-table")
    table.locator("tr").nth(6).wait_for(timeout=60_000)
    rows = table.locator("tr")
    first, second = rows.nth(1).inner_text(), rows.nth(2).inner_text()
    assert "George_W_Bush" in first and "George_W_Bush" in second
    assert "2 of 6 photos" in page.locator("#gallery-verdict").inner_text()
    page.locator("#gallery-results img").nth(5).wait_for(timeout=30_000)
    # LFW photos are not redistributed: this screenshot shows them heavily blurred.
    page.add_style_tag(content="#gallery-anchor img, #gallery-results img { filter: blur(9px) !important; }")
    page.wait_for_timeout(500)
    page.screenshot(path=str(SHOTS / "screenshot-gallery.png"), full_page=True)
    assert (SHOTS / "screenshot-gallery.png").stat().st_size > 10_000
    assert not page.outside, f"the page fetched from the internet: {page.outside[:5]}"


def _fake_camera_file(photo: Path, path: Path, frames: int = 10) -> Path:
    """A Y4M video (what Chromium's fake camera plays) of an example photo centred in a 640x480 frame."""
    import cv2
    import numpy as np

    img = Image.open(photo).convert("RGB")
    img.thumbnail((640, 480))
    frame = Image.new("RGB", (640, 480), (200, 200, 200))
    frame.paste(img, ((640 - img.width) // 2, (480 - img.height) // 2))
    yuv = cv2.cvtColor(np.asarray(frame), cv2.COLOR_RGB2YUV_I420).tobytes()
    with open(path, "wb") as f:
        f.write(b"YUV4MPEG2 W640 H480 F30:1 Ip A1:1 C420jpeg\n")
        for _ in range(frames):
            f.write(b"FRAME\n" + yuv)
    return path


#: A phone as the issue measured it: 390x844, mobile emulation, touch.
PHONE = {"viewport": {"width": 390, "height": 844}, "is_mobile": True, "has_touch": True}
DESKTOP = {"viewport": {"width": 1280, "height": 1000}}

#: Everything that must fit the width: the document, and every table, image, heading and crop on the page.
OVERFLOW = """() => { const W = window.innerWidth, bad = [];
  for (const el of document.querySelectorAll('table, img, h1, h2, h3, figure, video, .crops')) {
    const r = el.getBoundingClientRect();
    if (r.width > 0 && (r.right > W + 1 || r.left < -1)) bad.push(`${el.tagName}#${el.id}.${el.className}: ${r.left}-${r.right}`);
  }
  return {width: W, scroll: document.documentElement.scrollWidth, bad}; }"""


def test_phone_layout_fits_the_width_and_shows_the_verdict(page_url, playwright):
    """At 390x844 the compare tab never scrolls sideways, the crops sit side by side, and after Compare the
    verdict is in view; three anchor photos answer together."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
    try:
        pg = browser.new_context(**PHONE, device_scale_factor=2).new_page()
        pg.goto(page_url, wait_until="domcontentloaded")
        ex = ROOT / "examples"
        _upload(pg, "anchor", ex / "obama_A_2012_official_portrait.jpg")
        _upload(pg, "a", ex / "biden_B_2013_official_vp_portrait.jpg")
        _upload(pg, "b", ex / "obama_B_2009_joint_session_speech.jpg")
        pg.locator("#more-anchors-box").click()
        pg.locator("#more-anchors input[type=file]").set_input_files(
            [str(ex / "obama_C_2010_blue_room.jpg"), str(ex / "GROUP_obama_biden_2012_official_portrait.jpg")])
        pg.locator("#more-anchors").get_by_text("obama_C_2010_blue_room").wait_for(timeout=30_000)
        fit = pg.evaluate(OVERFLOW)
        assert fit["scroll"] <= fit["width"] and not fit["bad"], fit
        pg.locator("#compare").click()
        pg.locator("#verdict").get_by_text("Candidate B is the same person as the anchor").wait_for(timeout=60_000)
        pg.locator("#details .crops img").nth(2).wait_for(timeout=30_000)
        assert "3 of 3 anchor photos answered" in pg.locator("#verdict").inner_text()
        pg.wait_for_timeout(800)
        fit = pg.evaluate(OVERFLOW)
        assert fit["scroll"] <= fit["width"] and not fit["bad"], fit
        boxes = [pg.locator("#details .crops figure").nth(k).bounding_box() for k in range(3)]
        assert len({round(b["y"]) for b in boxes}) == 1 and boxes[0]["x"] < boxes[1]["x"] < boxes[2]["x"], boxes
        verdict = pg.locator("#verdict").bounding_box()
        assert -2 <= verdict["y"] < 844 - 40, verdict  # scrolled into view after Compare
        pg.screenshot(path=str(SHOTS / "screenshot-phone.png"))
    finally:
        browser.close()


@pytest.mark.parametrize("screen", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_webcam_capture_as_the_anchor(page_url, playwright, tmp_path, screen):
    """Chromium's fake camera shows an example portrait; it is captured as the anchor and compared."""
    video = _fake_camera_file(ROOT / "examples" / "obama_A_2012_official_portrait.jpg", tmp_path / "camera.y4m")
    browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS + [
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        f"--use-file-for-fake-video-capture={video}"])
    try:
        pg = browser.new_context(**screen).new_page()
        pg.goto(page_url, wait_until="domcontentloaded")
        anchor = pg.locator("#photo-anchor")
        anchor.get_by_role("button", name="Capture from camera").click()
        anchor.get_by_text("Click to Access Webcam").click()  # the page asks before opening the camera
        anchor.locator("video").wait_for(timeout=30_000)
        pg.wait_for_function("() => { const v = document.querySelector('#photo-anchor video');"
                             " return v && v.videoWidth > 0 && v.readyState >= 2; }", timeout=30_000)
        anchor.locator(".capture-button").click()
        anchor.locator("img").first.wait_for(timeout=30_000)
        _upload(pg, "a", ROOT / "examples" / "obama_B_2009_joint_session_speech.jpg")
        _upload(pg, "b", ROOT / "examples" / "biden_B_2013_official_vp_portrait.jpg")
        pg.locator("#compare").click()
        pg.locator("#verdict").get_by_text("Candidate A is the same person as the anchor").wait_for(timeout=60_000)
        pg.locator("#details img").first.wait_for(timeout=30_000)
        fit = pg.evaluate(OVERFLOW)
        assert fit["scroll"] <= fit["width"] and not fit["bad"], fit
        pg.screenshot(path=str(tmp_path / "webcam.png"), full_page=True)
    finally:
        browser.close()
