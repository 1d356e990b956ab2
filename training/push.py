"""Push a weights folder to the Hugging Face Hub: `python -m training.push --repo-id USER/NAME`.

One commit holds the weights file, config.json, metrics.json, the plots and the model card (README.md,
rebuilt from config.json and metrics.json). The token comes from HF_TOKEN or the stored login only.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger("training.push")


def push(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
         dry_run: str | Path | None = None, api=None) -> str:
    """Refresh the model card, then push `folder` (see facesim.hub.push_folder); returns the commit URL."""
    from facesim.hub import check_folder, push_folder

    from .card import write_card

    check_folder(folder)  # refuse before touching anything
    write_card(Path(folder))
    return push_folder(folder, repo_id, private=private, revision=revision, dry_run=dry_run, api=api)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.push", description=__doc__.split("\n")[0])
    p.add_argument("--repo-id", required=True, help="USER/NAME of the model repository")
    p.add_argument("--weights", default="weights", help="weights folder (default: weights/)")
    p.add_argument("--private", action="store_true", help="create the repository private")
    p.add_argument("--revision", default=None, help="branch to push to (default: main)")
    p.add_argument("--dry-run", metavar="DIR", default=None, help="write what would be uploaded into DIR")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from facesim import FaceSimError

    try:
        url = push(args.weights, args.repo_id, private=args.private, revision=args.revision, dry_run=args.dry_run)
    except FaceSimError as exc:
        print(f"push failed: {exc}", file=sys.stderr)
        return 2
    print(f"dry run: wrote the upload to {url}" if args.dry_run else f"pushed: {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
