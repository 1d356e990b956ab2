"""Export a trained, evaluated folder as the shipped weights: `python -m training.export --from runs/X --to weights`.

Copies the weights file, config.json, metrics.json, plots and history, then rebuilds the model card; files
of the model it replaces that the new one does not have (a training history, curves) are removed.
Refuses a folder whose metrics were not measured on its weights.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
from pathlib import Path


def export(src: str | Path, dst: str | Path) -> Path:
    from facesim.hub import check_folder

    from .card import write_card

    src, dst = Path(src), Path(dst)
    files = check_folder(src)
    dst.mkdir(parents=True, exist_ok=True)
    for stale in (dst / n for n in _known_files(dst) if n not in files):  # an older model's curves, history...
        stale.unlink()
    for name in files:
        if name != "README.md":
            tmp = dst / (name + ".tmp")
            shutil.copyfile(src / name, tmp)
            tmp.replace(dst / name)
    write_card(dst)
    check_folder(dst)
    return dst


def _known_files(folder: Path) -> list[str]:
    """The published files already in `folder` (whatever model they belong to)."""
    from facesim.hub import OPTIONAL, REQUIRED

    names = set(REQUIRED) | set(OPTIONAL) | {"encoder.weights.h5", "encoder.tflite"}
    return sorted(n for n in names if (folder / n).is_file())


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.export", description=__doc__.split("\n")[0])
    p.add_argument("--from", dest="src", required=True, help="an evaluated training output folder")
    p.add_argument("--to", dest="dst", default="weights", help="destination (default: weights/)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from facesim import FaceSimError

    try:
        out = export(args.src, args.dst)
    except FaceSimError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
    print(f"exported to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
