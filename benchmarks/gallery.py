"""Gallery search speed: `python benchmarks/gallery.py [--photos 50]`.

One anchor and N photos of about 1 MP (LFW faces, enlarged onto a 1280x960 canvas at run time; nothing is
written to the repository) through `facesim.rank`; prints seconds in all and per photo, warm.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from benchmarks.common import LFW, TRIO, megapixel_jpeg, pct  # noqa: E402


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--photos", type=int, default=50)
    p.add_argument("--reps", type=int, default=3)
    args = p.parse_args(argv)
    import facesim

    people = sorted(d for d in LFW.iterdir() if d.is_dir())[: args.photos]
    photos = [megapixel_jpeg(next(iter(sorted(d.glob("*.jpg"))))) for d in people]
    encoder = facesim.load_encoder()
    facesim.rank(TRIO[0], photos[:2], weights=encoder)  # warm up
    times = []
    for _ in range(args.reps):
        t0 = time.perf_counter()
        ranked = facesim.rank(TRIO[0], photos, weights=encoder)
        times.append(time.perf_counter() - t0)
    print(f"# FaceSim gallery search, {time.strftime('%Y-%m-%d')}, {platform.machine()}, {os.cpu_count()} CPUs")
    print(f"rank: anchor + {len(photos)} photos of ~1 MP: p50 {pct(times, 50):.2f} s "
          f"({pct(times, 50) / len(photos) * 1000:.0f} ms per photo, {args.reps} runs); "
          f"{sum(r.error is None for r in ranked)} photos with a face")
    return 0


if __name__ == "__main__":
    sys.exit(main())
