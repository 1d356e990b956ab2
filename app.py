"""FaceSim's Gradio app: upload an anchor and two candidates; see which one is the same person.

Run `python app.py [--host H] [--port P] [--share] [--weights DIR|hf://user/name[@rev]]`.
Environment: FACESIM_WEIGHTS, GRADIO_SERVER_NAME, GRADIO_SERVER_PORT, FACESIM_CACHE_SECONDS.
"""

from __future__ import annotations

import argparse
import base64
import functools
import html
import io
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


#: Example comparisons shown on the page: public-domain US-government photos (examples/README.md).
EXAMPLES = [
    ("obama_A_2012_official_portrait.jpg", "obama_B_2009_joint_session_speech.jpg", "biden_B_2013_official_vp_portrait.jpg"),
    ("biden_B_2013_official_vp_portrait.jpg", "obama_C_2010_blue_room.jpg", "biden_A_2010_blue_room.jpg"),
    ("eileen_collins_nasa.png", "grace_hopper_usn_1984.jpg", "GROUP_obama_biden_2012_official_portrait.jpg"),
    ("biden_A_2010_blue_room.jpg", "GROUP_obama_biden_2012_official_portrait.jpg", "obama_C_2010_blue_room.jpg"),
]
#: What each example row must answer ("A", "B", "both" or "neither"); tests/test_app.py checks it.
EXAMPLE_ANSWERS = ("A", "B", "neither", "A")
#: Which candidates' answers must be "uncertain" (with what would help) in each row: the third row shows it.
#: Two different women of similar age in uniform portraits sit at distance 0.475, just beyond the threshold
#: (0.418): the calibrated probability that they are one person is 0.10, too high to answer confidently.
EXAMPLE_UNCERTAIN = ((), (), ("A",), ())
EXAMPLES_DIR = Path(__file__).resolve().parent / "examples"
#: Most photos a gallery search takes at once.
MAX_GALLERY = 50
MAX_ANCHORS = facesim.MAX_ANCHORS


def build_demo(weights: str | None = None) -> gr.Blocks:
    """The FaceSim UI bound to one weights folder (the model itself loads on first use)."""
    folder = resolve_weights(weights)
    config = ModelConfig.read(folder)
    default_threshold = round(config.threshold if config.threshold is not None else 1.0, 3)

    @friendly_errors
    def compare(anchor, candidate_a, candidate_b, threshold=None, face_anchor=1, face_a=0, face_b=0,
                more_anchors=None):
        photos = _require((anchor, candidate_a, candidate_b), PHOTOS)
        extra = _paths(more_anchors)
        if len(extra) > MAX_ANCHORS - 1:
            raise gr.Error(f"Please add at most {MAX_ANCHORS - 1} more photos of the anchor ({len(extra)} given).",
                           title="Too many anchor photos", print_exception=False)
        t0 = time.perf_counter()
        result = facesim.compare(
            [photos[0], *extra] if extra else photos[0], photos[1], photos[2], weights=folder,
            threshold=float(threshold) if threshold is not None else None,
            face_index=(_index(face_anchor), _index(face_a, auto=True), _index(face_b, auto=True)),
        )
        t1 = time.perf_counter()
        headline, details, data = render(result, (face_anchor, face_a, face_b))
        t2 = time.perf_counter()
        marked = render_marked([(_marked(path, faces, used), f"{name}: {len(faces)} face(s)")
                                for path, faces, used, name in (
            (photos[0], result.anchor_faces, result.anchor, "anchor"), (photos[1], result.a.faces, result.a.face, "A"),
            (photos[2], result.b.faces, result.b.face, "B"))])
        # Where a request's time goes inside the handler (benchmarks/load.py reads it); no image data in logs.
        log.info("timings: compare %.1f ms, crops and table %.1f ms, boxed photos %.1f ms", (t1 - t0) * 1e3,
                 (t2 - t1) * 1e3, (time.perf_counter() - t2) * 1e3)
        return headline, details, marked, data

    @friendly_errors
    def explain(anchor, candidate_a, candidate_b, face_anchor=1, face_a=0, face_b=0):
        photos = _require((anchor, candidate_a, candidate_b), PHOTOS)
        out = []
        for k, (label, pick) in enumerate((("A", face_a), ("B", face_b)), 1):
            x = facesim.explain(photos[0], photos[k], weights=folder,
                                face_index=(_index(face_anchor), _index(pick, auto=True)),
                                names=("anchor", f"candidate {label}"))
            out += [(_heat(x.crop_a, x.heatmap_a), f"anchor vs {label} (distance {x.distance:.3f})"),
                    (_heat(x.crop_b, x.heatmap_b), f"candidate {label}")]
        return out

    @friendly_errors
    def search(anchor, files, threshold=None, more_anchors=None, progress=gr.Progress()):
        (anchor,) = _require((anchor,), ("anchor",))
        extra = _paths(more_anchors)
        if len(extra) > MAX_ANCHORS - 1:
            raise gr.Error(f"Please add at most {MAX_ANCHORS - 1} more photos of the anchor ({len(extra)} given).",
                           title="Too many anchor photos", print_exception=False)
        paths = _paths(files)
        if not paths:
            raise gr.Error("Please add the photos to search (up to 50).", title="No photos", print_exception=False)
        if len(paths) > MAX_GALLERY:
            raise gr.Error(f"Please search at most {MAX_GALLERY} photos at a time ({len(paths)} given).",
                           title="Too many photos", print_exception=False)
        progress(0, desc="Finding faces")
        names = [Path(p).name for p in paths]
        ranked = facesim.rank([anchor, *extra] if extra else anchor, paths, weights=folder, names=names,
                              threshold=float(threshold) if threshold is not None else None,
                              on_progress=lambda done, total: progress(done / total, desc="Finding faces"))
        return render_ranking(ranked, names)

    with gr.Blocks(title="FaceSim: same person?", delete_cache=(max(1, CACHE_SECONDS // 2), CACHE_SECONDS),
                   analytics_enabled=False) as demo:
        gr.Markdown(
            "# FaceSim: is it the same person?\n"
            "FaceSim finds the faces in each photo, aligns them, and measures how far apart they are with a face "
            "network (dlib's public-domain ResNet, ported to Keras and set up for triplet training). A group photo "
            "as a candidate is searched for the anchor's person. Photos are used for this answer only and are "
            "deleted from the server within minutes."
        )
        with gr.Tab("Compare", id="compare-tab"):
            gr.Markdown("Add an **anchor** photo and two **candidates**: which candidate is the anchor's person?")
            with gr.Row(elem_id="photos"):
                inputs = []
                for label, key in (("Anchor", "anchor"), ("Candidate A", "a"), ("Candidate B", "b")):
                    with gr.Column(min_width=200):
                        inputs.append(Photo(label=label, type="filepath", sources=["upload", "clipboard", "webcam"],
                                            height=260, elem_id=f"photo-{key}"))
                        if key == "anchor":
                            with gr.Accordion("More photos of the anchor (optional)", open=False,
                                              elem_id="more-anchors-box"):
                                more_anchors = gr.File(
                                    label=f"Up to {MAX_ANCHORS - 1} more photos of the same person: they answer "
                                    "together", file_count="multiple", file_types=["image"], elem_id="more-anchors")
            with gr.Accordion("Options: threshold, and which face to use when a photo has several", open=False):
                threshold = gr.Slider(0.0, 2.0, value=default_threshold, step=0.005, label="Same-person threshold "
                                      f"(distance; calibrated: {default_threshold})", elem_id="threshold")
                with gr.Row():
                    faces = [gr.Number(value=1, minimum=1, maximum=50, precision=0, elem_id="face-anchor",
                                       label="Face # in the anchor (as numbered under 'Faces found'; 1 = the clearest)")]
                    faces += [gr.Number(value=0, minimum=0, maximum=50, precision=0, elem_id=f"face-{key}",
                                        label=f"Face # in {label} (0 = the face most like the anchor's)")
                              for key, label in (("a", "candidate A"), ("b", "candidate B"))]
            with gr.Row():
                button = gr.Button("Compare", variant="primary", elem_id="compare")
                explain_button = gr.Button("Explain: which regions decided?", elem_id="explain")
            headline = gr.Markdown(elem_id="verdict")
            details = gr.HTML(elem_id="details")
            marked = gr.HTML(elem_id="marked")
            heat = gr.Gallery(label="Explanation: red regions pulled the faces together, blue pushed them apart",
                              columns=4, height=220, object_fit="contain", elem_id="heat")
            with gr.Accordion("Result as JSON", open=False):
                data = gr.JSON(label="result")
            button.click(compare, inputs=[*inputs, threshold, *faces, more_anchors],
                         outputs=[headline, details, marked, data], api_name="compare",
                         concurrency_limit=CONCURRENCY).then(None, js=SHOW_VERDICT)
            explain_button.click(explain, inputs=[*inputs, *faces], outputs=[heat], api_name="explain",
                                 concurrency_limit=CONCURRENCY)
            examples = [[str(EXAMPLES_DIR / f) for f in row] for row in EXAMPLES
                        if all((EXAMPLES_DIR / f).is_file() for f in row)]
            if examples:
                gr.Examples(examples, inputs=inputs, label="Try an example (public-domain US-government photos; "
                            "the people shown have nothing to do with FaceSim and do not endorse it)",
                            elem_id="examples")
        with gr.Tab("Gallery search", id="gallery-tab"):
            gr.Markdown(f"One **anchor** and up to {MAX_GALLERY} photos: which of them show the anchor's person?")
            with gr.Row():
                with gr.Column(scale=1, min_width=200):
                    g_anchor = Photo(label="Anchor", type="filepath", sources=["upload", "clipboard"], height=260,
                                     elem_id="gallery-anchor")
                    with gr.Accordion("More photos of the anchor (optional)", open=False,
                                      elem_id="gallery-more-anchors-box"):
                        g_more = gr.File(label=f"Up to {MAX_ANCHORS - 1} more photos of the same person: they answer "
                                         "together", file_count="multiple", file_types=["image"],
                                         elem_id="gallery-more-anchors")
                g_files = gr.File(label=f"Photos to search (up to {MAX_GALLERY})", file_count="multiple",
                                  file_types=["image"], elem_id="gallery-files", scale=2)
            g_threshold = gr.Slider(0.0, 2.0, value=default_threshold, step=0.005,
                                    label="Same-person threshold (distance)", elem_id="gallery-threshold")
            g_button = gr.Button("Search", variant="primary", elem_id="search")
            g_headline = gr.Markdown(elem_id="gallery-verdict")
            g_gallery = gr.Gallery(label="Best matches first", columns=6, height=300, object_fit="contain",
                                   elem_id="gallery-results")
            g_table = gr.HTML(elem_id="gallery-table")
            with gr.Accordion("Result as JSON", open=False):
                g_data = gr.JSON(label="ranking")
            g_button.click(search, inputs=[g_anchor, g_files, g_threshold, g_more],
                           outputs=[g_headline, g_gallery, g_table, g_data], api_name="rank",
                           concurrency_limit=CONCURRENCY)
        gr.Markdown(
            f"Model: `{Path(folder).name}`; threshold calibrated on validation photos of people it never saw. "
            "Distances run from 0 (identical) to 2. The probability weighs the distance with how clear the faces are; "
            "*uncertain* means the answer has a real chance of being wrong (a small, turned, unclear or blurred face, "
            "or a distance close to the threshold), and the page says what would help. "
            "Limits: 25 MB per photo, 50 megapixels."
        )
    demo.queue(max_size=64, default_concurrency_limit=CONCURRENCY)
    demo.facesim_weights = folder  # for start-up warm-up
    return demo


def _paths(files) -> list[str]:
    """The paths of a multiple-file upload (None or empty: none)."""
    paths = [f if isinstance(f, str) else getattr(f, "name", None) for f in (files or [])]
    return [p for p in paths if p]


def _require(values, names) -> list[str]:
    for value, name in zip(values, names):
        if value is None or (isinstance(value, str) and not value):
            raise gr.Error(f"Please add the {name} photo.", title="A photo is missing", print_exception=False)
    return list(values)


def _index(value, *, auto: bool = False) -> int | None:
    """The 0-based face index of a face number (1 = the first); for a candidate (`auto`) 0 means "closest"."""
    try:
        number = int(value if value is not None else (0 if auto else 1))
    except (TypeError, ValueError):
        raise gr.Error("The face number must be a whole number (1 = the first face, as numbered under "
                       "'Faces found').") from None
    if auto and number <= 0:
        return None
    return max(0, number - 1)


def render(r: facesim.Comparison, chosen) -> tuple[str, str, dict]:
    """Headline markdown, details HTML (the three crops, table, bar chart), JSON.

    The crops are embedded in the HTML as small JPEGs: as separate result files each cost the server a copy
    into Gradio's cache and the browser a request of its own (measured: see docs/benchmarks.md).
    """
    notes = []
    if r.anchor_note:
        notes.append(r.anchor_note[0].upper() + r.anchor_note[1:] + ".")
    if r.anchor_faces_found > 1:
        which = "face 1 (the clearest)" if _index(chosen[0]) == 0 else f"face {_index(chosen[0]) + 1}"
        notes.append(f"{r.anchor_faces_found} faces found in the anchor photo, using {which}.")
    for name, c, pick in (("candidate A", r.a, chosen[1]), ("candidate B", r.b, chosen[2])):
        if c.faces_found > 1:
            how = "the one most like the anchor" if _index(pick, auto=True) is None else "as chosen"
            notes.append(f"{c.faces_found} faces found in the {name} photo: compared with face {c.index + 1} "
                         f"({how}).")
    for reason in dict.fromkeys(r.a.reasons + r.b.reasons):
        notes.append(f"Uncertain: {reason}.")
    for advice in dict.fromkeys(r.a.advice + r.b.advice):
        notes.append(f"What would help: {advice}.")
    headline = f"## {r.summary}\n" + "".join(f"- {n}\n" for n in notes)
    figures = "".join(
        f"<figure><img src='{_data_uri(crop)}' alt='{html.escape(label)}'><figcaption>"
        f"{html.escape(label)}</figcaption></figure>"
        for crop, label in ((r.anchor.crop, "Anchor" if r.anchors is None or r.anchors.count == 1 else
                             f"Anchor (+{r.anchors.count - 1} more)"),
                            (r.a.face.crop, f"A{_which(r.a)}: {r.a.distance:.3f} ({r.a.verdict})"),
                            (r.b.face.crop, f"B{_which(r.b)}: {r.b.distance:.3f} ({r.b.verdict})")))
    rows = "".join(
        f"<tr><td>{k}</td><td>{c.index + 1} of {c.faces_found}</td><td>{c.distance:.3f}</td>"
        f"<td>{c.probability:.0%}: {html.escape(c.likelihood)}</td><td><b>{html.escape(c.verdict)}</b></td></tr>"
        for k, c in (("A", r.a), ("B", r.b))
    )
    bars = "".join(_bar(k, c.distance, r.threshold) for k, c in (("A", r.a), ("B", r.b)))
    more = ""
    if r.anchors is not None and r.anchors.count > 1:
        thumbs = "".join(f"<img src='{_data_uri(f.crop)}' alt='anchor photo {k + 1}' title='anchor photo {k + 1}'>"
                         for k, f in zip(r.anchors.used, r.anchors.faces))
        more = f"<div class='anchor-faces'><span>Anchor faces used ({r.anchors.count}):</span>{thumbs}</div>"
    details = (
        f"<div class='crops' title='Faces compared (as the model sees them)'>{figures}</div>{more}"
        "<table class='result'><tr><th>candidate</th><th>face</th><th>distance</th><th><span class='long'>same-person "
        "</span>probability</th>"
        f"<th>verdict</th></tr>{rows}</table>"
        f"<p>threshold {r.threshold:.3f}: at or below it, the faces count as the same person.</p>"
        f"<div style='position:relative;margin-top:8px'>{bars}"
        f"<div title='threshold' style='position:absolute;top:0;bottom:0;left:calc(2.5em + {min(r.threshold, 2) / 2:.4f}"
        f" * (100% - 2.5em));border-left:2px dashed #c00'></div></div>"
    )
    return headline, details, r.to_dict()


def _which(c) -> str:
    return f" ({c.which})" if c.which else ""


def render_ranking(ranked: list, names: list[str]) -> tuple[str, list, str, list]:
    """Headline, gallery of the ranked crops, table HTML, and JSON of a gallery search."""
    matches = [r for r in ranked if r.is_match]
    headline = (f"## {len(matches)} of {len(ranked)} photos show the anchor's person"
                if matches else f"## None of the {len(ranked)} photos shows the anchor's person")
    anchors = ranked[0].anchors if ranked else None
    if anchors is not None and anchors.photos > 1:
        notes = "".join(f"; {n}" for n in anchors.notes())
        headline += f"\n- {anchors.count} of {anchors.photos} anchor photos answered{notes}."
    gallery = [(_show(r.face.crop), f"#{k} {names[r.index]}"
                f"{f' (face {r.face_used + 1} of {r.faces_found})' if r.faces_found > 1 else ''}: "
                f"{r.distance:.3f} ({r.verdict})")
               for k, r in enumerate(ranked, 1) if r.face is not None]
    rows = []
    for k, r in enumerate(ranked, 1):
        style = " style='background:#e6f6ec'" if r.is_match else ""
        if r.error:
            cells = f"<td>-</td><td>-</td><td>{html.escape(r.error)}</td>"
        else:
            why = (f" ({html.escape('; '.join(r.reasons))}. What would help: {html.escape('; '.join(r.advice))})"
                   if r.reasons else "")
            cells = (f"<td>{r.distance:.3f}</td><td>{r.probability:.0%}: {html.escape(facesim.likelihood(r.probability))}"
                     f"</td><td><b>{r.verdict}</b>{why}</td>")
        rows.append(f"<tr{style}><td>{k}</td><td>{html.escape(names[r.index])}</td>{cells}</tr>")
    table = ("<table style='width:100%'><tr><th>rank</th><th>photo</th><th>distance</th>"
             f"<th>same-person probability</th><th>verdict</th></tr>{''.join(rows)}</table>")
    data = [{"photo": names[r.index], **r.to_dict()} for r in ranked]
    return headline, gallery, table, data


#: Longer side of the boxed photos: a cell of the 3-column "Faces found" gallery shows about 400 px.
MARKED_SIDE = 480


def render_marked(items: list[tuple[str, str]]) -> str:
    """The three photos with their faces boxed, side by side with captions, as HTML with inline JPEGs.

    Inline, not as result files: each file cost the server a copy into Gradio's cache and the browser a request
    of its own through the whole middleware stack (docs/benchmarks.md, issue 21).
    """
    figures = "".join(f"<figure><img src='{uri}' alt='{html.escape(caption)}'><figcaption>{html.escape(caption)}"
                      "</figcaption></figure>" for uri, caption in items)
    return (f"<div class='marked-title'>Faces found (numbered; green = the face used)</div>"
            f"<div class='marked'>{figures}</div>")


def _marked(path: str, faces, used) -> str:
    """The photo, at most `MARKED_SIDE` px on its longer side, with every face boxed and numbered as
    `face_index` counts them, as an inline JPEG (`data:` URI)."""
    from PIL import ImageDraw, ImageOps

    # The photo was decoded and checked by the compare already: here a JPEG is decoded at a reduced size
    # (libjpeg's DCT scaling), not again at full resolution, and only oriented as `load_image` did.
    with Image.open(path) as img:
        full_w = img.width
        img.draft("RGB", (MARKED_SIDE, MARKED_SIDE))
        factor = img.width / full_w
        canvas = ImageOps.exif_transpose(img.convert("RGB"))
    scale = factor * min(1.0, MARKED_SIDE / max(canvas.size))
    if max(canvas.size) > MARKED_SIDE:
        canvas.thumbnail((MARKED_SIDE, MARKED_SIDE), Image.BILINEAR)
    draw = ImageDraw.Draw(canvas)
    for k, face in enumerate(faces, 1):
        x, y, w, h = (v * scale for v in face.box)
        colour, width = ("#1db954", 4) if face is used else ("#ffcc00", 2)
        draw.rectangle([x, y, x + w, y + h], outline=colour, width=width)
        draw.rectangle([x, max(0, y - 22), x + 22, max(0, y - 22) + 22], fill=colour)
        draw.text((x + 6, max(0, y - 22) + 4), str(k), fill="black")
    buf = io.BytesIO()
    canvas.save(buf, format="JPEG", quality=85)  # a photo: JPEG encodes several times faster than PNG
    return "data:image/jpeg;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _heat(crop: np.ndarray, heatmap: np.ndarray) -> str:
    """The crop at 240 px with the heat map over it: red pulled the faces together, blue pushed apart."""
    scale = max(float(np.abs(heatmap).max()), 1e-6)
    h = heatmap / scale
    overlay = np.zeros(crop.shape, np.float32)
    overlay[..., 0] = np.clip(h, 0, 1) * 255
    overlay[..., 2] = np.clip(-h, 0, 1) * 255
    alpha = (np.abs(h) * 0.6)[..., None]
    mixed = (crop.astype(np.float32) * (1 - alpha) + overlay * alpha).astype(np.uint8)
    return _save(Image.fromarray(mixed).resize((240, 240), Image.NEAREST if len(mixed) <= 80 else Image.BILINEAR))


def _bar(label: str, distance: float, threshold: float) -> str:
    colour = "#2a7" if distance <= threshold else "#888"
    return (f"<div style='display:flex;align-items:center;margin:4px 0'><span style='width:2.5em'>{label}</span>"
            f"<div style='flex:1;background:#eee;height:18px'><div style='width:{min(distance, 2) / 2:.2%};"
            f"background:{colour};height:18px'></div></div></div>")


_CROPS = Path(tempfile.mkdtemp(prefix="facesim-crops-"))


def _data_uri(crop: np.ndarray) -> str:
    """The crop as an inline JPEG (`data:` URI), small chips 2x enlarged."""
    import cv2

    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(_displayed(crop), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 90])
    return "data:image/jpeg;base64," + base64.b64encode(buf.tobytes()).decode("ascii")


def _show(crop: np.ndarray) -> str:
    """The crop as the model saw it (small chips 2x enlarged), as a JPEG file of its own (a few KB; a PNG of
    a photo is ten times larger, and every result image is fetched by the browser).

    Gradio would cache a returned array under a name derived from its content and rewrite that file on every
    request, so two people comparing the same photo at once could read a half-written file; a uniquely named
    file is instead copied into the cache atomically.
    """
    return _save(Image.fromarray(_displayed(crop)), suffix=".jpg")


def _displayed(crop: np.ndarray) -> np.ndarray:
    """The crop at the size it is shown: small chips (the small CNN's 80 px) 2x enlarged, pixel for pixel."""
    k = 2 if crop.shape[0] < 120 else 1
    return np.repeat(np.repeat(crop, k, axis=0), k, axis=1)


_pruned = [0.0]
_prune_lock = threading.Lock()


def _prune() -> None:
    """Delete rendered images older than the cache age; at most every 10 s (under load the folder holds
    thousands of files, and listing it for every image written cost more than writing the image)."""
    now = time.time()
    with _prune_lock:
        if now - _pruned[0] < 10:
            return
        _pruned[0] = now
    for old in _CROPS.glob("*.*"):
        try:
            if now - old.stat().st_mtime > max(CACHE_SECONDS, 60):
                old.unlink()
        except OSError:
            pass  # pruned by a concurrent request


def _save(image: Image.Image, suffix: str = ".png") -> str:
    """Write an image to a uniquely named PNG (see `_show`), pruning files older than the cache age.

    Gradio copies the file into its cache when the handler returns; the age floor of a minute keeps a
    slow request's own earlier images (a gallery search writes up to 50) until then.
    """
    _prune()
    path = _CROPS / f"{uuid.uuid4().hex}{suffix}"
    image.save(path, **({"quality": 88} if suffix == ".jpg" else {"compress_level": 1}))
    return str(path)


def warm_up(folder: str) -> float:
    """Load the model and run it once, so that the first person does not wait; returns seconds."""
    t0 = time.perf_counter()
    encoder = facesim.load_encoder(folder)
    encoder.embed_crops(np.zeros((3, encoder.config.crop_size, encoder.config.crop_size, 3), np.uint8))
    try:
        facesim.extract_faces(np.zeros((64, 64, 3), np.uint8))  # loads the detector network
    except facesim.NoFaceFoundError:
        pass
    return time.perf_counter() - t0


THEME = gr.themes.Default(font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "monospace"])
#: The result's layout: on a desktop as it always was; on a phone (up to 600 px wide) the three crops side by
#: side, the table within the width, the upload boxes shorter. tests/test_browser.py checks it at 390x844.
CSS = """
#details .crops { display: flex; gap: 10px; flex-wrap: wrap; margin-bottom: 10px; }
#details .crops figure { margin: 0; text-align: center; width: 150px; }
#details .crops img { width: 150px; height: 150px; border-radius: 6px; }
#details .crops figcaption { font-size: 0.85em; }
#details .anchor-faces { display: flex; gap: 6px; align-items: center; flex-wrap: wrap; margin-bottom: 10px;
  font-size: 0.85em; }
#details .anchor-faces img { width: 48px; height: 48px; border-radius: 4px; }
#details table.result { width: 100%; }
#marked .marked-title { font-size: 0.9em; margin-bottom: 4px; }
#marked .marked { display: flex; gap: 8px; }
#marked figure { flex: 1 1 0; min-width: 0; margin: 0; text-align: center; }
#marked img { width: 100%; height: 260px; object-fit: contain; }
#marked figcaption { font-size: 0.85em; }
@media (max-width: 600px) {
  #marked img { height: auto; max-height: 200px; }
  #details .crops { flex-wrap: nowrap; gap: 6px; }
  #details .crops figure { width: calc((100% - 12px) / 3); min-width: 0; }
  #details .crops img { width: 100%; height: auto; aspect-ratio: 1; }
  #details .crops figcaption { font-size: 0.75em; overflow-wrap: anywhere; }
  #details table.result, #gallery-table table { font-size: 0.8em; }
  #details table.result td, #gallery-table td { overflow-wrap: anywhere; }
  #details table.result th, #details table.result td { padding: 4px 2px; }
  #details table.result th .long { display: none; }
}
"""
#: After Compare, bring the verdict into view when it is not (on a phone it sits below the three uploads).
SHOW_VERDICT = """() => { const v = document.querySelector('#verdict');
  if (v && v.getBoundingClientRect().top > window.innerHeight * 0.6) v.scrollIntoView({block: 'start'}); }"""
#: What `launch` needs besides the Blocks: theme and stylesheet (Gradio 6 takes them at launch).
STYLE = {"theme": THEME, "css": CSS}

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
    app.launch(server_name=args.host, server_port=args.port, share=args.share, **STYLE,
               max_file_size=MAX_BYTES // 2, show_error=True)


if __name__ == "__main__":
    main()
