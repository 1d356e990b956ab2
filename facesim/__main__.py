"""Command line: `python -m facesim ANCHOR A B` (which is the anchor's person?) or `python -m facesim A B`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m facesim",
        description="Compare faces. Three photos: is candidate A or B the anchor's person? Two photos: same person?",
        epilog="Exit status: 0 answered, 2 a photo or the weights could not be used (message on stderr).",
    )
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="ANCHOR A B, or A B")
    p.add_argument("--weights", default=os.environ.get("FACESIM_WEIGHTS"),
                   help="weights folder or hf://user/name[@revision] (default: the shipped weights/)")
    p.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    args = p.parse_args(argv)
    if len(args.photos) not in (2, 3):
        p.error("give two photos (A B) or three (ANCHOR A B)")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING)

    from . import FaceSimError, compare, verify

    try:
        if len(args.photos) == 3:
            r = compare(*args.photos, weights=args.weights, threshold=args.threshold)
            out = r.to_dict()
            text = (f"{r.headline}.\n"
                    f"  A: distance {r.a.distance:.3f}  probability {r.a.probability:.2f}  {r.a.verdict}\n"
                    f"  B: distance {r.b.distance:.3f}  probability {r.b.probability:.2f}  {r.b.verdict}\n"
                    f"  threshold {r.threshold:.3f}")
        else:
            v = verify(*args.photos, weights=args.weights, threshold=args.threshold)
            out = v.to_dict()
            text = (f"{'Same person' if v.is_match else 'Different people'} ({v.verdict}): distance "
                    f"{v.distance:.3f}, probability {v.probability:.2f}, threshold {v.threshold:.3f}")
    except FaceSimError as exc:
        if args.json:
            print(json.dumps({"error": str(exc), "input": exc.input_name}))
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out, indent=2) if args.json else text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
