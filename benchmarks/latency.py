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

from benchmarks.common import (TRIO, free_port, megapixel_jpeg, pct, start_app, textured_jpeg,  # noqa: E402
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
    from facesim.align import align
    from facesim.detect import detect
    from facesim.model import DEFAULT_WEIGHTS, Encoder

    t_import = time.perf_counter() - t0
    t0 = time.perf_counter()
    encoder = Encoder.load(DEFAULT_WEIGHTS)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    encoder.embed_crops(np.zeros((3, encoder.config.crop_size, encoder.config.crop_size, 3), np.uint8))
    t_first = time.perf_counter() - t0
    print(f"import facesim (no TensorFlow; encoder runtime {type(encoder._forward).__name__}): {t_import:.2f} s; "
          f"model load: {t_load:.2f} s; "
          f"first embedding: {t_first:.2f} s")

    sets = {"250 px (LFW)": [p.read_bytes() for p in TRIO], "~1 MP (1280x960)": [megapixel_jpeg(p) for p in TRIO],
            "~1 MP on random noise (textured)": [textured_jpeg(p, seed=k) for k, p in enumerate(TRIO)]}
    for label, photos in sets.items():
        decode, det, ali, emb, total = [], [], [], [], []
        for _ in range(args.reps):  # the stages one after another, for the breakdown
            t0 = time.perf_counter()
            images = [facesim.load_image(b) for b in photos]
            t1 = time.perf_counter()
            found = [detect(im)[0] for im in images]
            t2 = time.perf_counter()
            crops = [align(im, d.keypoints, chip=encoder.config.chip) for im, d in zip(images, found)]
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
              f"{pct(total, 95):.1f} ms (stages one after another: decode {pct(decode, 50):.1f} + detection "
              f"{pct(det, 50):.1f} + alignment {pct(ali, 50):.1f} + embedding of 3 faces"
              f"{' with flip TTA' if encoder.config.flip_tta else ''} "
              f"{pct(emb, 50):.1f} ms, p50 of {args.reps})")

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
