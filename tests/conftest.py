"""Shared fixtures: real faces from ../shared/data (never copied into the repo), tiny models, images."""

from __future__ import annotations

import io
import os
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

DATA = Path(os.environ.get("FACESIM_DATA", ROOT.parent / "shared" / "data"))
LFW = DATA / "lfw-deepfunneled"
ATT = DATA / "att_faces"
WILD = DATA / "celeba-wild-val" / "images"
WEIGHTS = ROOT / "weights"

if not LFW.is_dir():
    raise pytest.UsageError(f"the face data is missing: {LFW} (tests need ../shared/data beside the repo)")


def lfw(name: str, i: int = 1) -> Path:
    """Path of LFW image i of a person (1-based, as in the file names)."""
    return LFW / name / f"{name}_{i:04d}.jpg"


def png_bytes(arr: np.ndarray, mode: str | None = None, **save) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format=save.pop("format", "PNG"), **save)
    return buf.getvalue()


@pytest.fixture(scope="session")
def face_path() -> Path:
    return lfw("George_W_Bush", 1)


@pytest.fixture(scope="session")
def trio() -> dict[str, Path]:
    """Anchor and a second photo of one person, and a photo of someone else (all LFW test people)."""
    return {"anchor": lfw("George_W_Bush", 1), "same": lfw("George_W_Bush", 2), "other": lfw("Serena_Williams", 1)}


@pytest.fixture(scope="session")
def tiny_weights(tmp_path_factory) -> Path:
    """A tiny untrained encoder with a threshold and calibration: fast model-plumbing tests."""
    from facesim.model import Calibration, ModelConfig, build_encoder

    import keras

    keras.utils.set_random_seed(0)
    folder = tmp_path_factory.mktemp("tiny_weights")
    config = ModelConfig(widths=(8, 8, 8, 8), embedding_dim=16, threshold=1.0,
                         calibration=Calibration(slope=8.0, center=1.0))
    build_encoder(config).save_weights(folder / config.weights_file)
    config.write(folder)
    return folder


def inline_images(html: str) -> list:
    """(PIL image, caption) of each inline JPEG figure in the app's HTML (the boxed photos, the crops)."""
    import base64
    import re

    found = re.findall(r"<img src='data:image/jpeg;base64,([^']+)' alt='([^']*)'", html)
    return [(Image.open(io.BytesIO(base64.b64decode(data))), alt) for data, alt in found]


def exif_jpeg(pixels: np.ndarray, orientation: int) -> bytes:
    """A JPEG of `pixels` (RGB uint8) whose EXIF says `orientation` (1-8)."""
    img = Image.fromarray(pixels)
    exif = img.getexif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    return buf.getvalue()
