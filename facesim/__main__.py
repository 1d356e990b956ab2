"""Command line: `python -m facesim ANCHOR A B`, `python -m facesim A B`, or `python -m facesim rank ANCHOR PHOTO...`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["rank"]:
        return _rank(argv[1:])
    p = argparse.ArgumentParser(
        prog="python -m facesim",
        description="Compare faces. Three photos: is candidate A or B the anchor's person? Two photos: same person? "
                    "With --anchor (repeatable, up to 5), those photos of one person are the anchor and the rest "
                    "are the candidates (one or two). "
                    "`python -m facesim rank ANCHOR PHOTO...` searches many photos for the anchor's person.",
        epilog="Exit status: 0 answered, 2 a photo or the weights could not be used (message on stderr).",
    )
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="ANCHOR A B, or A B; with --anchor: A B, or B")
    _anchor_option(p)
    _common(p)
    args = p.parse_args(argv)
    anchors = args.anchor or []
    if anchors and len(args.photos) not in (1, 2):
        p.error("with --anchor, give one candidate photo (B) or two (A B)")
    if not anchors and len(args.photos) not in (2, 3):
        p.error("give two photos (A B) or three (ANCHOR A B)")
    _quiet()
    from . import FaceSimError, compare, verify

    photos = ([anchors] if anchors else []) + args.photos
    try:
        if len(photos) == 3:
            r = compare(*photos, weights=args.weights, threshold=args.threshold)
            out = r.to_dict()
            text = (f"{r.headline}.\n"
                    f"  A: distance {r.a.distance:.3f}  probability {r.a.probability:.2f} ({r.a.likelihood})  "
                    f"{r.a.verdict}{f'  ({r.a.which})' if r.a.which else ''}\n"
                    f"  B: distance {r.b.distance:.3f}  probability {r.b.probability:.2f} ({r.b.likelihood})  "
                    f"{r.b.verdict}{f'  ({r.b.which})' if r.b.which else ''}\n"
                    f"  threshold {r.threshold:.3f}")
        else:
            v = verify(*photos, weights=args.weights, threshold=args.threshold)
            out = v.to_dict()
            text = (f"{'Same person' if v.is_match else 'Different people'} ({v.verdict}): distance "
                    f"{v.distance:.3f}, probability {v.probability:.2f} ({v.likelihood}), threshold {v.threshold:.3f}")
            if v.anchors is not None and v.anchors.photos > 1:
                text += f"\n  {v.anchors.count} of {v.anchors.photos} photos of A answered"
                text += "".join(f"; {n}" for n in v.anchors.notes())
            if v.faces_found[1] > 1:
                text += f"\n  photo B: face {v.face_used[1] + 1} of {v.faces_found[1]} (the one most like photo A's)"
            if v.reasons:
                text += "\n  uncertain: " + "; ".join(v.reasons)
                text += "\n  what would help: " + "; ".join(v.advice)
    except FaceSimError as exc:
        return _fail(exc, args.json)
    print(json.dumps(out, indent=2) if args.json else text)
    return 0


def _rank(argv: list[str]) -> int:
    p = argparse.ArgumentParser(prog="python -m facesim rank",
                                description="Which of these photos show the anchor's person? Best match first.",
                                epilog="Exit status: 0 answered (photos without a face are listed as such), "
                                       "2 the anchor or the weights could not be used.")
    p.add_argument("photos", nargs="+", metavar="PHOTO", help="ANCHOR PHOTO..., or with --anchor: PHOTO...")
    _anchor_option(p)
    _common(p)
    args = p.parse_args(argv)
    if args.anchor:
        anchor = args.anchor
    elif len(args.photos) >= 2:
        anchor, args.photos = args.photos[0], args.photos[1:]
    else:
        p.error("give the anchor and at least one photo to search")
    _quiet()
    from pathlib import Path

    from . import FaceSimError, rank

    bar = None
    if len(args.photos) > 3:
        from tqdm import tqdm  # comes with huggingface-hub

        bar = tqdm(total=len(args.photos), desc="photos", unit="photo", file=sys.stderr, leave=False)
    try:
        ranked = rank(anchor, args.photos, weights=args.weights, threshold=args.threshold,
                      names=[Path(x).name for x in args.photos],
                      on_progress=(lambda done, _: bar.update(done - bar.n)) if bar else None)
    except FaceSimError as exc:
        return _fail(exc, args.json)
    finally:
        if bar is not None:
            bar.close()
    if args.json:
        print(json.dumps([{"photo": args.photos[r.index], **r.to_dict()} for r in ranked], indent=2))
        return 0
    for k, r in enumerate(ranked, 1):
        if r.error:
            print(f"{k:3d}. {args.photos[r.index]}  -  {r.error}")
        else:
            why = f" ({'; '.join(r.reasons)}; what would help: {'; '.join(r.advice)})" if r.reasons else ""
            face = f"  (face {r.face_used + 1} of {r.faces_found})" if r.faces_found > 1 else ""
            print(f"{k:3d}. {args.photos[r.index]}  distance {r.distance:.3f}  probability {r.probability:.2f}  "
                  f"{r.verdict}{why}{face}")
    return 0


def _anchor_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--anchor", action="append", metavar="PHOTO",
                   help="a photo of the anchor's person (repeat for up to 5 photos of that person: they answer together)")


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--weights", default=os.environ.get("FACESIM_WEIGHTS"),
                   help="weights folder or hf://user/name[@revision] (default: the shipped weights/)")
    p.add_argument("--threshold", type=float, default=None, help="override the calibrated threshold")
    p.add_argument("--json", action="store_true", help="print JSON")


def _quiet() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    logging.basicConfig(level=logging.WARNING)


def _fail(exc, as_json: bool) -> int:
    if as_json:
        print(json.dumps({"error": str(exc), "input": exc.input_name}))
    print(f"error: {exc}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
