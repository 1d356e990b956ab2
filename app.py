"""FaceSim's Gradio app: upload an anchor and two candidates; see which one is the same person.

Run `python app.py [--host H] [--port P] [--share] [--weights DIR|hf://user/name[@rev]]`.
Environment: FACESIM_WEIGHTS, GRADIO_SERVER_NAME, GRADIO_SERVER_PORT, FACESIM_CACHE_SECONDS.
"""

from __future__ import annotations

import argparse
import functools
import html
import logging
import os
import tempfile
import threading
import time
import uuid
from pathlib import Path

# The page must work with no internet: no analytics calls, no telemetry.
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gradio as gr  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

import facesim  # noqa: E402
from facesim.image import MAX_BYTES  # noqa: E402
from facesim.model import DEFAULT_WEIGHTS, ModelConfig  # noqa: E402

log = logging.getLogger("facesim.app")

#: Uploaded photos and rendered crops are deleted from Gradio's cache after this many seconds.
CACHE_SECONDS = int(os.environ.get("FACESIM_CACHE_SECONDS", "120"))
#: Requests the model works on at once; more queue (2 cores: more threads do not help).
CONCURRENCY = int(os.environ.get("FACESIM_CONCURRENCY", "2"))
PHOTOS = ("anchor", "candidate A", "candidate B")


class Photo(gr.Image):
    """An image input that hands the uploaded file's path to FaceSim undecoded.

    gr.Image would open the file with Pillow first, so a corrupt upload would fail inside Gradio with a
    message that does not say which photo was wrong; FaceSim's loader reports it properly instead.
    """

    is_template = True  # rendered by Gradio's own Image front end

    def preprocess(self, payload):
        if payload is None or (payload.url or "").startswith("data:"):
            return super().preprocess(payload)
        return payload.path


def resolve_weights(weights: str | None) -> str:
    """A local weights folder for `weights` (a folder, hf://user/name[@rev], or None = shipped weights)."""
    if not weights:
        return str(DEFAULT_WEIGHTS)
    if weights.startswith("hf://"):
        from facesim.hub import download_weights  # only when the Hub is asked for

        return str(download_weights(weights))
    return weights


def friendly_errors(fn):
    """Every failure reaches the person as a gr.Error with a clear message; the server keeps running."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except facesim.FaceSimError as exc:
            raise gr.Error(_sentence(str(exc)), title="Cannot compare these photos", print_exception=False) from None
        except Exception:  # noqa: BLE001 - the last line of defence of a public demo
            log.exception("unexpected error in %s", fn.__name__)
            raise gr.Error("Something went wrong on our side while comparing these photos. Please try again.",
                           print_exception=False) from None

    return wrapper


def _sentence(message: str) -> str:
    head, _, rest = message.partition(": ")
    return f"The {head} photo: {rest}." if rest and head in PHOTOS else message.rstrip(".") + "."


def build_demo(weights: str | None = None) -> gr.Blocks:
    """The FaceSim UI bound to one weights folder (the model itself loads on first use)."""
    folder = resolve_weights(weights)
    config = ModelConfig.read(folder)
    default_threshold = round(config.threshold if config.threshold is not None else 1.0, 3)

    @friendly_errors
    def compare(anchor, candidate_a, candidate_b, threshold=None, face_anchor=1, face_a=1, face_b=1):
        for value, name in zip((anchor, candidate_a, candidate_b), PHOTOS):
            if value is None or (isinstance(value, str) and not value):
                raise gr.Error(f"Please add the {name} photo.", title="A photo is missing", print_exception=False)
        t0 = time.perf_counter()
        result = facesim.compare(
            anchor, candidate_a, candidate_b, weights=folder,
            threshold=float(threshold) if threshold is not None else None,
            face_index=(_index(face_anchor), _index(face_a), _index(face_b)),
        )
        log.info("compare answered in %.0f ms", (time.perf_counter() - t0) * 1000)  # no image data in logs
        return render(result, (face_anchor, face_a, face_b))

    with gr.Blocks(title="FaceSim: same person?", delete_cache=(max(1, CACHE_SECONDS // 2), CACHE_SECONDS),
                   analytics_enabled=False) as demo:
        gr.Markdown(
            "# FaceSim: which candidate is the same person?\n"
            "Add an **anchor** photo and two **candidates**. FaceSim finds the face in each photo, aligns it, "
            "and measures how far apart the faces are with its own triplet-trained network. "
            "Photos are used for this comparison only and are deleted from the server within minutes."
        )
        with gr.Row():
            inputs = [Photo(label=label, type="filepath", sources=["upload", "clipboard", "webcam"], height=260,
                            elem_id=f"photo-{key}")
                      for label, key in (("Anchor", "anchor"), ("Candidate A", "a"), ("Candidate B", "b"))]
        with gr.Accordion("Options: threshold, and which face to use when a photo has several", open=False):
            threshold = gr.Slider(0.0, 2.0, value=default_threshold, step=0.005, label="Same-person threshold "
                                  f"(distance; calibrated: {default_threshold})", elem_id="threshold")
            with gr.Row():
                faces = [gr.Number(value=1, minimum=1, maximum=50, precision=0, label=f"Face # in {label}")
                         for label in ("anchor", "candidate A", "candidate B")]
        button = gr.Button("Compare", variant="primary", elem_id="compare")
        headline = gr.Markdown(elem_id="verdict")
        with gr.Row():
            crops = gr.Gallery(label="Faces compared (as the model sees them)", columns=3, height=220,
                               object_fit="contain", elem_id="crops", scale=1)
            details = gr.HTML(elem_id="details")
        with gr.Accordion("Result as JSON", open=False):
            data = gr.JSON(label="result")
        button.click(compare, inputs=[*inputs, threshold, *faces], outputs=[headline, crops, details, data],
                     api_name="compare", concurrency_limit=CONCURRENCY)
        examples = sorted(p for p in (Path(__file__).parent / "examples").glob("*")
                          if p.suffix.lower() in {".jpg", ".jpeg", ".png", ".webp"})
        if len(examples) >= 3:
            gr.Examples([[str(p) for p in examples[i : i + 3]] for i in range(0, len(examples) - 2, 3)], inputs=inputs)
        gr.Markdown(
            f"Model: `{Path(folder).name}`, threshold calibrated on held-out LFW people. "
            "Distances run from 0 (identical) to 2. *Uncertain* means the distance is close to the threshold. "
            "Limits: 25 MB per photo, 50 megapixels; photos with no detectable frontal face are refused."
        )
    demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
    demo.facesim_weights = folder  # for start-up warm-up
    return demo


def _index(value) -> int:
    try:
        return max(0, int(value or 1) - 1)
    except (TypeError, ValueError):
        raise gr.Error("The face number must be a whole number (1 = the largest face).") from None


def render(r: facesim.Comparison, chosen) -> tuple[str, list, str, dict]:
    """Headline markdown, gallery of the three crops, details HTML (table + bar chart), JSON."""
    notes = []
    for name, n, pick in (("anchor", r.anchor_faces_found, chosen[0]), ("candidate A", r.a.faces_found, chosen[1]),
                          ("candidate B", r.b.faces_found, chosen[2])):
        if n > 1:
            which = "the largest" if _index(pick) == 0 else f"face {_index(pick) + 1}"
            notes.append(f"{n} faces found in the {name} photo, using {which}.")
    headline = f"## {r.headline}\n" + "".join(f"- {n}\n" for n in notes)
    gallery = [(_show(r.anchor.crop), "Anchor"),
               (_show(r.a.face.crop), f"A: {r.a.distance:.3f} ({r.a.verdict})"),
               (_show(r.b.face.crop), f"B: {r.b.distance:.3f} ({r.b.verdict})")]
    rows = "".join(
        f"<tr><td>{k}</td><td>{c.distance:.3f}</td><td>{c.probability:.0%}</td><td><b>{html.escape(c.verdict)}</b></td></tr>"
        for k, c in (("A", r.a), ("B", r.b))
    )
    bars = "".join(_bar(k, c.distance, r.threshold) for k, c in (("A", r.a), ("B", r.b)))
    details = (
        "<table style='width:100%'><tr><th>candidate</th><th>distance</th><th>same-person probability</th>"
        f"<th>verdict</th></tr>{rows}</table>"
        f"<p>threshold {r.threshold:.3f}: at or below it, the faces count as the same person.</p>"
        f"<div style='position:relative;margin-top:8px'>{bars}"
        f"<div title='threshold' style='position:absolute;top:0;bottom:0;left:calc(2.5em + {min(r.threshold, 2) / 2:.4f}"
        f" * (100% - 2.5em));border-left:2px dashed #c00'></div></div>"
    )
    return headline, gallery, details, r.to_dict()


def _bar(label: str, distance: float, threshold: float) -> str:
    colour = "#2a7" if distance <= threshold else "#888"
    return (f"<div style='display:flex;align-items:center;margin:4px 0'><span style='width:2.5em'>{label}</span>"
            f"<div style='flex:1;background:#eee;height:18px'><div style='width:{min(distance, 2) / 2:.2%};"
            f"background:{colour};height:18px'></div></div></div>")


_CROPS = Path(tempfile.mkdtemp(prefix="facesim-crops-"))


def _show(crop: np.ndarray) -> str:
    """The crop, 2x enlarged, as a PNG file of its own.

    Gradio would cache a returned array under a name derived from its content and rewrite that file on every
    request, so two people comparing the same photo at once could read a half-written file; a uniquely named
    file is instead copied into the cache atomically. Files older than the cache age are pruned here.
    """
    now = time.time()
    for old in _CROPS.glob("*.png"):
        try:
            if now - old.stat().st_mtime > CACHE_SECONDS:
                old.unlink()
        except OSError:
            pass  # pruned by a concurrent request
    path = _CROPS / f"{uuid.uuid4().hex}.png"
    Image.fromarray(np.repeat(np.repeat(crop, 2, axis=0), 2, axis=1)).save(path)
    return str(path)


def warm_up(folder: str) -> float:
    """Load the model and run it once, so that the first person does not wait; returns seconds."""
    t0 = time.perf_counter()
    encoder = facesim.load_encoder(folder)
    encoder.embed_crops(np.zeros((3, encoder.config.crop_size, encoder.config.crop_size, 3), np.uint8))
    return time.perf_counter() - t0


THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])

def _build_or_exit(weights: str | None) -> gr.Blocks:
    try:
        return build_demo(weights)
    except facesim.FaceSimError as exc:  # a bad --weights / FACESIM_WEIGHTS: one line, not a traceback
        raise SystemExit(f"FaceSim cannot start: {exc}") from None


demo = _build_or_exit(os.environ.get("FACESIM_WEIGHTS"))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(prog="python app.py", description="FaceSim web app")
    p.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    p.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", "7860")))
    p.add_argument("--share", action="store_true", help="make a public share link (needs internet)")
    p.add_argument("--weights", default=os.environ.get("FACESIM_WEIGHTS"),
                   help="weights folder or hf://user/name[@revision] (default: the shipped weights/)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    app = demo if args.weights == os.environ.get("FACESIM_WEIGHTS") else _build_or_exit(args.weights)
    # The model (and TensorFlow) load in the background while the server starts; a request that arrives
    # first simply waits for it.
    threading.Thread(target=lambda: log.info("model ready in %.1f s", warm_up(app.facesim_weights)),
                     name="facesim-warm-up", daemon=True).start()
    app.launch(server_name=args.host, server_port=args.port, share=args.share, theme=THEME,
               max_file_size=MAX_BYTES // 2, show_error=True)


if __name__ == "__main__":
    main()
