"""Helpers shared by the benchmarks: photos made from LFW at run time, and a locally launched app."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
LFW = Path(os.environ.get("FACESIM_DATA", ROOT.parent / "shared" / "data")) / "lfw-deepfunneled"
TRIO = (LFW / "George_W_Bush/George_W_Bush_0001.jpg", LFW / "George_W_Bush/George_W_Bush_0002.jpg",
        LFW / "Serena_Williams/Serena_Williams_0001.jpg")
#: Three photos of the anchor's person (the first is TRIO's anchor), for the anchor-set case.
ANCHORS = (TRIO[0], LFW / "George_W_Bush/George_W_Bush_0003.jpg", LFW / "George_W_Bush/George_W_Bush_0004.jpg")


def megapixel_jpeg(path: Path, size=(1280, 960)) -> bytes:
    """A ~1 MP photo: the face upscaled and placed on a larger background (never written to the repo)."""
    face = Image.open(path).resize((600, 600), Image.BICUBIC)
    canvas = Image.new("RGB", size, (128, 128, 128))
    canvas.paste(face, ((size[0] - 600) // 2, (size[1] - 600) // 3))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(port: int, extra_env: dict | None = None, log=None) -> subprocess.Popen:
    """`python app.py` on `port`; its log (stderr) goes to the open file `log`, or nowhere."""
    env = {**os.environ, "GRADIO_ANALYTICS_ENABLED": "False", **(extra_env or {})}
    return subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--host", "127.0.0.1", "--port", str(port)],
                            cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log or subprocess.DEVNULL)


def textured_jpeg(path: Path, size=(1280, 960), seed: int = 0) -> bytes:
    """A ~1 MP photo whose background is random noise (the worst case for JPEG decoding and detection)."""
    rng = np.random.default_rng(seed)
    canvas = Image.fromarray(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    face = Image.open(path).resize((600, 600), Image.BICUBIC)
    canvas.paste(face, ((size[0] - 600) // 2, (size[1] - 600) // 3))
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def wait_for_answer(url: str, paths, timeout: float = 120.0):
    """Poll until the app answers one compare; returns (client, seconds waited)."""
    from gradio_client import Client, handle_file

    t0 = time.perf_counter()
    while True:
        try:
            client = Client(url, verbose=False)
            client.predict(*(handle_file(str(p)) for p in paths), api_name="/compare")
            return client, time.perf_counter() - t0
        except Exception:  # noqa: BLE001 - not up yet
            if time.perf_counter() - t0 > timeout:
                raise
            time.sleep(0.2)


def pct(values, q) -> float:
    return float(np.percentile(np.asarray(values), q))
