"""Fresh-install cost: `python benchmarks/install.py [REQUIREMENTS ...]` (default: requirements.txt).

For each requirements file: a new virtual environment in a temporary folder, `pip install -r FILE` timed
(no pip cache, as a new machine or a Space build has none), the environment's size on disk, then an import
of what the app imports at run time. The folder is deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file() and not f.is_symlink())


def measure(requirements: Path) -> dict:
    with tempfile.TemporaryDirectory(prefix="facesim-venv-") as tmp:
        venv = Path(tmp) / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        t0 = time.perf_counter()
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", "--no-cache-dir", "-r", str(requirements)],
                       check=True, cwd=ROOT, env={**os.environ, "PIP_DISABLE_PIP_VERSION_CHECK": "1"})
        seconds = time.perf_counter() - t0
        size = folder_bytes(venv)
        # The app's imports, and one real compare of the example photos, in the new environment alone.
        probe = subprocess.run([str(venv / "bin" / "python"), "-c",
                                "import gradio, cv2, numpy, PIL, huggingface_hub, facesim, sys, app; "
                                "r = facesim.compare('examples/biden_A_2010_blue_room.jpg', "
                                "'examples/GROUP_obama_biden_2012_official_portrait.jpg', "
                                "'examples/obama_C_2010_blue_room.jpg'); assert r.matches == 'A', r.matches; "
                                "print('tensorflow' in sys.modules or 'keras' in sys.modules)"],
                               cwd=ROOT, capture_output=True, text=True)
        return {"file": requirements.name, "seconds": seconds, "mb": size / 1e6,
                "imports": probe.returncode == 0, "tensorflow_imported": probe.stdout.strip() == "True",
                "error": probe.stderr.strip().splitlines()[-1:] if probe.returncode else []}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("requirements", nargs="*", default=[str(ROOT / "requirements.txt")])
    args = p.parse_args(argv)
    print(f"# FaceSim fresh install, {time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs, Python "
          f"{sys.version.split()[0]}, pip without cache")
    print("| requirements | install time | venv size | app imports and answers (TensorFlow loaded?) |\n|---|---|---|---|")
    for req in args.requirements:
        m = measure(Path(req).resolve())
        print(f"| {m['file']} | {m['seconds']:.0f} s | {m['mb']:.0f} MB | "
              f"{('yes (TensorFlow loaded)' if m['tensorflow_imported'] else 'yes (no TensorFlow)') if m['imports'] else 'no: ' + ' '.join(m['error'])} |")
    shutil.rmtree(Path(tempfile.gettempdir()) / "facesim-venv-", ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
