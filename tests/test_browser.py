"""The real page in Debian's chromium, driven by Playwright: upload three photos, compare, read the verdict."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from conftest import ROOT

CHROMIUM = os.environ.get("FACESIM_CHROMIUM", "/usr/bin/chromium")
SCREENSHOT = ROOT / "docs" / "screenshot.png"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def page_url():
    if not Path(CHROMIUM).exists() and not shutil.which(CHROMIUM):
        pytest.fail(f"chromium is not installed at {CHROMIUM} (.ci/run installs Debian's chromium)")
    import app

    _, url, _ = app.demo.launch(prevent_thread_lock=True, server_name="127.0.0.1", quiet=True, theme=app.THEME)
    yield url
    app.demo.close()


def test_compare_in_the_browser(page_url, trio):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
            "--disable-component-update", "--disable-sync"])
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            outside = []  # the page must work offline: nothing may be fetched from other hosts
            page.on("request", lambda r: None if r.url.startswith((page_url.rstrip("/"), "data:", "blob:"))
                    else outside.append(r.url))
            page.goto(page_url, wait_until="domcontentloaded")
            for key, path in (("anchor", trio["anchor"]), ("a", trio["same"]), ("b", trio["other"])):
                page.locator(f"#photo-{key} input[type=file]").set_input_files(str(path))
                page.locator(f"#photo-{key} img").first.wait_for(timeout=30_000)
            page.locator("#compare").click()
            verdict = page.locator("#verdict")
            verdict.get_by_text("Candidate A is the same person as the anchor").wait_for(timeout=60_000)
            crops = page.locator("#crops img")
            crops.nth(2).wait_for(timeout=30_000)
            assert crops.count() >= 3
            assert "no match" in page.locator("#details").inner_text()
            # LFW photos are not redistributed: the committed screenshot shows them heavily blurred.
            page.add_style_tag(content="img { filter: blur(9px) !important; }")
            page.wait_for_timeout(500)
            SCREENSHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SCREENSHOT), full_page=True)
        finally:
            browser.close()
    assert not outside, f"the page fetched from the internet: {outside[:5]}"
    assert SCREENSHOT.stat().st_size > 10_000
