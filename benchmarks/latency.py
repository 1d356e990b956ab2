"""Speed of the shipped model on this machine: `python benchmarks/latency.py [--reps 30]`.

Prints model load time, cold start of app.py to its first answer, per-compare p50/p95 for three
photos at 250 px and at ~1 MP (decode, detection, alignment and embedding shown separately), and the
cost of one explanation (`facesim.explain`).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from benchmarks.common import (ANCHORS, TRIO, free_port, megapixel_jpeg, pct, start_app, textured_jpeg,  # noqa: E402
                               wait_for_answer)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--reps", type=int, default=30)
    p.add_argument("--skip-cold-start", action="store_true")
    args = p.parse_args(argv)
    print(f"# FaceSim latency, {time.strftime('%Y-%m-%d')}, {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} CPUs")

    t0 = time.perf_counter()
    import facesim
    from facesim.detect import detect_many
    from facesim.faces import _face, decode_for_detection
    from facesim.image import open_photo
    from facesim.model import DEFAULT_WEIGHTS, Encoder

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    encoder = Encoder.load(DEFAULT_WEIGHTS)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    encoder.embed_crops(np.zeros((3, encoder.config.crop_size, encoder.config.crop_size, 3), np.uint8))
    t_first = time.perf_counter() - t0
    from facesim.dnn import runtime

    print(f"import facesim (no TensorFlow; models run by {runtime()}): {t_import:.2f} s; "
          f"model load: {t_load:.2f} s; "
          f"first embedding: {t_first:.2f} s")

    sets = {"250 px (LFW)": [p.read_bytes() for p in TRIO], "~1 MP (1280x960)": [megapixel_jpeg(p) for p in TRIO],
            "~1 MP on random noise (textured)": [textured_jpeg(p, seed=k) for k, p in enumerate(TRIO)]}
    for label, photos in sets.items():
        decode, det, ali, emb, total = [], [], [], [], []
        for _ in range(args.reps):  # the stages one after another (one thread), for the breakdown
            t0 = time.perf_counter()
            opened = [open_photo(b) for b in photos]
            images = [decode_for_detection(p) for p in opened]  # the decode detection needs (reduced JPEG)
            t1 = time.perf_counter()
            found = detect_many(images)  # one detector pass for the three photos
            t2 = time.perf_counter()
            crops = [_face(p, im, f[0], encoder.config.chip).crop for p, im, f in zip(opened, images, found)]
            t3 = time.perf_counter()
            encoder.embed_crops(np.stack(crops))
            t4 = time.perf_counter()
            decode.append((t1 - t0) * 1e3)
            det.append((t2 - t1) * 1e3)
            ali.append((t3 - t2) * 1e3)
            emb.append((t4 - t3) * 1e3)
        for _ in range(args.reps):  # compare after compare, as a server answers requests
            t0 = time.perf_counter()
            facesim.compare(*photos, weights=encoder)
            total.append((time.perf_counter() - t0) * 1e3)
        print(f"compare of three photos at {label} (facesim.compare, warm): p50 {pct(total, 50):.1f} ms, p95 "
              f"{pct(total, 95):.1f} ms (stages one after another, one thread: decode {pct(decode, 50):.1f} + "
              f"detection, one pass {pct(det, 50):.1f} + chips and quality {pct(ali, 50):.1f} + embedding of 3 faces"
              f"{' with flip TTA' if encoder.config.flip_tta else ''} "
              f"{pct(emb, 50):.1f} ms, p50 of {args.reps})")

    # Several photos of the anchor's person (issue 20): three anchor photos against the one-photo compare of
    # the same candidates, alternating so that both see the same machine state.
    for label, make in (("~1 MP", lambda p, seed: megapixel_jpeg(p)), ("textured ~1 MP", textured_jpeg)):
        anchors = [make(p, seed=10 + k) for k, p in enumerate(ANCHORS)]
        candidates = [make(p, seed=k) for k, p in enumerate(TRIO[1:], 1)]
        one, three = [], []
        for _ in range(args.reps):
            t0 = time.perf_counter()
            facesim.compare(anchors[0], *candidates, weights=encoder)
            t1 = time.perf_counter()
            facesim.compare(anchors, *candidates, weights=encoder)
            t2 = time.perf_counter()
            one.append((t1 - t0) * 1e3)
            three.append((t2 - t1) * 1e3)
        print(f"compare with three anchor photos (5 {label} photos): p50 {pct(three, 50):.1f} ms, p95 "
              f"{pct(three, 95):.1f} ms; the one-photo compare of the same candidates: p50 {pct(one, 50):.1f} ms; "
              f"ratio {pct(three, 50) / pct(one, 50):.2f}")

    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        facesim.explain(TRIO[0], TRIO[1], weights=encoder)
        times.append(time.perf_counter() - t0)
    print(f"explain (occlusion maps of both faces of a pair, 250 px photos): p50 {pct(times, 50):.2f} s of 5")

    if not args.skip_cold_start:
        port = free_port()
        with tempfile.TemporaryDirectory():
            t0 = time.perf_counter()
            proc = start_app(port)
            try:
                _, waited = wait_for_answer(f"http://127.0.0.1:{port}/", TRIO)
            finally:
                proc.terminate()
                proc.wait(30)
        print(f"cold start: `python app.py` to its first answer: {waited:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
