"""Deploy the app to a Hugging Face Space: `python -m training.deploy --space-id USER/NAME`.

One commit holds exactly what the Space runs (app.py, facesim/, weights/, examples/, requirements.txt and
README.md with its Space front matter); files of an earlier deploy that are no longer needed go in the
same commit. The token comes from HF_TOKEN or `hf auth login` only and is never printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.deploy", description=__doc__.split("\n")[0])
    p.add_argument("--space-id", required=True, help="USER/NAME of the Space (created if missing)")
    p.add_argument("--private", action="store_true", help="create the Space private")
    p.add_argument("--dry-run", metavar="DIR", default=None, help="write exactly what would be uploaded into DIR")
    p.add_argument("--root", default=str(ROOT), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from facesim import FaceSimError
    from facesim.hub import push_space

    try:
        url = push_space(args.root, args.space_id, private=args.private, dry_run=args.dry_run)
    except FaceSimError as exc:
        print(f"deploy failed: {exc}", file=sys.stderr)
        return 2
    print(f"dry run: wrote the Space's files to {url}" if args.dry_run else f"deployed: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
