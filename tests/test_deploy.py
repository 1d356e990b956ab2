"""`python -m training.deploy`: exactly what a Space needs, in one commit, tested offline with a recording HfApi."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import ROOT
from facesim.hub import push_space, space_files
from facesim import WeightsError
from test_hub import TOKEN, RecordingApi


def test_space_files_are_what_the_app_needs_and_nothing_else():
    files = space_files(ROOT)
    for needed in ("app.py", "requirements.txt", "README.md", "facesim/__init__.py", "facesim/detect.py",
                   "facesim/models/face_detection_full_range.tflite", "facesim/models/face_detection_short_range.tflite",
                   "facesim/models/LICENSE-Apache-2.0.txt", "facesim/models/README.md",
                   "weights/encoder.weights.h5", "weights/encoder.tflite", "weights/config.json", "weights/README.md",
                   "examples/obama_A_2012_official_portrait.jpg", "examples/README.md"):
        assert needed in files
    assert not any(f.startswith(("tests/", "training/", "benchmarks/", ".cache/", ".venv/")) for f in files)
    assert not any("lfw" in f.lower() or "celeba" in f.lower() for f in files)


def test_deploy_is_one_commit_to_a_gradio_space(monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = RecordingApi()
    url = push_space(ROOT, "someone/facesim-demo", api=api)
    assert url == "https://huggingface.co/spaces/someone/facesim-demo"
    assert [c[0] for c in api.calls] == ["create_repo", "upload_folder"]
    _, repo, kw = api.calls[0]
    assert repo == "someone/facesim-demo" and kw["repo_type"] == "space" and kw["space_sdk"] == "gradio"
    assert api.calls[1][2]["repo_type"] == "space"
    assert sorted(api.uploaded) == space_files(ROOT)
    readme = api.uploaded["README.md"][1].decode()
    assert readme.startswith("---\n") and "sdk: gradio" in readme and 'python_version: "3.11"' in readme


def test_dry_run_cli_writes_exactly_the_upload(tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = RecordingApi()
    push_space(ROOT, "someone/facesim-demo", api=api)
    out = tmp_path / "space"
    r = subprocess.run([sys.executable, "-m", "training.deploy", "--space-id", "someone/facesim-demo",
                        "--dry-run", str(out)], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    written = sorted(p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file())
    assert written == sorted(api.uploaded)
    for name, (_, data) in api.uploaded.items():
        assert (out / name).read_bytes() == data


@pytest.mark.parametrize("env", [{"HF_HUB_OFFLINE": "1"}, {"HF_HUB_OFFLINE": "1", "HF_TOKEN": TOKEN}],
                         ids=["no-token", "offline"])
def test_no_token_or_offline_is_one_line_exit_2(tmp_path, env):
    full = {**os.environ, "HF_HOME": str(tmp_path / "hf"), **env}
    if "HF_TOKEN" not in env:
        full.pop("HF_TOKEN", None)
    r = subprocess.run([sys.executable, "-m", "training.deploy", "--space-id", "someone/facesim-demo"], cwd=ROOT,
                       env=full, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert r.stderr.startswith("deploy failed: ") and TOKEN not in r.stderr + r.stdout


def test_checkout_without_front_matter_is_refused(tmp_path):
    for name in ("app.py", "requirements.txt"):
        (tmp_path / name).write_text("x")
    (tmp_path / "README.md").write_text("# no front matter\n")
    with pytest.raises(WeightsError, match="front matter"):
        space_files(tmp_path)
    assert Path(tmp_path / "README.md").is_file()
