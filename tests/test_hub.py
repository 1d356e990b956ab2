"""Hub push and pull, offline: a recording fake HfApi at the boundary, and a real-layout HF cache."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conftest import ROOT, WEIGHTS
from facesim import WeightsError
from facesim.hub import check_folder, parse_spec
from training.push import main as push_main
from training.push import push

TOKEN = "hf_TESTtoken_do_not_leak_0123456789"


class RecordingApi:
    """Stands in for huggingface_hub.HfApi: records calls, snapshots what upload_folder would send."""

    def __init__(self):
        self.calls = []
        self.uploaded = {}

    def create_repo(self, repo_id, **kw):
        self.calls.append(("create_repo", repo_id, kw))

    def create_branch(self, repo_id, **kw):
        self.calls.append(("create_branch", repo_id, kw))

    def upload_folder(self, *, folder_path, repo_id, allow_patterns, **kw):
        self.calls.append(("upload_folder", repo_id, kw))
        for name in allow_patterns:
            self.uploaded[name] = (os.path.join(folder_path, name), open(os.path.join(folder_path, name), "rb").read())

        class Info:
            commit_url = f"https://huggingface.co/{repo_id}/commit/{'0' * 40}"

        return Info()


@pytest.fixture
def folder(tmp_path):
    dst = tmp_path / "weights"
    shutil.copytree(WEIGHTS, dst)
    return dst


def test_push_is_one_commit_with_card_and_figures(folder, monkeypatch, caplog, capsys):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = RecordingApi()
    url = push(folder, "someone/facesim", private=True, revision="v1", api=api)
    assert url == "https://huggingface.co/someone/facesim/commit/" + "0" * 40
    kinds = [c[0] for c in api.calls]
    assert kinds == ["create_repo", "create_branch", "upload_folder"]
    assert api.calls[0][2]["private"] is True and api.calls[2][2]["revision"] == "v1"
    assert {"encoder.weights.h5", "encoder.tflite", "config.json", "metrics.json", "README.md", "roc.png"} <= set(api.uploaded)

    from huggingface_hub import ModelCard

    card = ModelCard(api.uploaded["README.md"][1].decode())
    metrics = json.loads(api.uploaded["metrics.json"][1])
    assert card.data.library_name == "keras" and card.data.license == "mit"
    assert "triplet-loss" in card.data.tags and card.data.datasets == ["lfw"]
    values = {(r.dataset_split, r.metric_type): r.metric_value for r in card.data.eval_results}
    assert values["test", "accuracy"] == pytest.approx(metrics["pair_accuracy"], abs=1e-4)
    assert values["test", "roc_auc"] == pytest.approx(metrics["roc_auc"], abs=1e-4)
    assert values["validation", "accuracy"] == pytest.approx(metrics["wild_pair_accuracy"], abs=1e-4)
    assert f"{metrics['pair_accuracy']:.4f}" in card.text and "python -m training." in card.text
    # The token is never written or logged.
    for name, (_, data) in api.uploaded.items():
        assert TOKEN.encode() not in data, name
    assert TOKEN not in caplog.text and TOKEN not in "".join(capsys.readouterr())


def test_dry_run_writes_exactly_the_upload(folder, tmp_path, monkeypatch):
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    api = RecordingApi()
    push(folder, "someone/facesim", api=api)
    out = tmp_path / "dry"
    assert push_main(["--repo-id", "someone/facesim", "--weights", str(folder), "--dry-run", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(api.uploaded)
    for name, (_, data) in api.uploaded.items():
        assert (out / name).read_bytes() == data
        assert TOKEN.encode() not in data


@pytest.mark.parametrize("damage", ["no_metrics", "no_card", "stale_metrics", "unevaluated"])
def test_incomplete_or_inconsistent_folder_is_refused(folder, damage):
    if damage == "no_metrics":
        (folder / "metrics.json").unlink()
    elif damage == "no_card":
        (folder / "README.md").unlink()
    elif damage == "stale_metrics":
        m = json.loads((folder / "metrics.json").read_text())
        m["weights_sha256"] = "0" * 64
        (folder / "metrics.json").write_text(json.dumps(m))
    elif damage == "unevaluated":
        m = json.loads((folder / "metrics.json").read_text())
        m.pop("pair_accuracy")
        (folder / "metrics.json").write_text(json.dumps(m))
    api = RecordingApi()
    with pytest.raises(WeightsError):
        push(folder, "someone/facesim", api=api)
    assert api.calls == []


def test_swapped_weights_are_refused(folder):
    with open(folder / "encoder.weights.h5", "ab") as f:
        f.write(b"\0")
    with pytest.raises(WeightsError, match="checksum"):
        check_folder(folder)


def test_missing_token_is_one_line_error(folder, tmp_path, monkeypatch):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_TOKEN", None)
    r = subprocess.run([sys.executable, "-m", "training.push", "--repo-id", "someone/facesim", "--weights", str(folder)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2
    assert r.stderr.strip().count("\n") == 0 and "no Hugging Face token" in r.stderr and "Traceback" not in r.stderr


def test_offline_push_is_one_line_error(folder, tmp_path):
    env = {**os.environ, "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "HF_TOKEN": TOKEN}
    r = subprocess.run([sys.executable, "-m", "training.push", "--repo-id", "someone/facesim", "--weights", str(folder)],
                       cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and ("offline" in r.stderr or "cannot reach" in r.stderr)
    assert TOKEN not in r.stderr + r.stdout


def test_parse_spec():
    assert parse_spec("hf://me/model") == ("me/model", None)
    assert parse_spec("hf://me/model@v2") == ("me/model", "v2")
    with pytest.raises(WeightsError):
        parse_spec("hf://nonsense")


def make_hf_cache(cache, repo_id: str, folder, revision: str = "main"):
    """Lay out `folder` in a Hugging Face cache exactly as hf_hub_download writes it."""
    repo_dir = cache / ("models--" + repo_id.replace("/", "--"))
    commit = hashlib.sha1(repo_id.encode() + revision.encode()).hexdigest()
    (repo_dir / "refs").mkdir(parents=True)
    (repo_dir / "refs" / revision).write_text(commit)
    snap = repo_dir / "snapshots" / commit
    snap.mkdir(parents=True)
    (repo_dir / "blobs").mkdir()
    for f in folder.iterdir():
        if f.is_file():
            data = f.read_bytes()
            blob = repo_dir / "blobs" / hashlib.sha256(data).hexdigest()
            blob.write_bytes(data)
            (snap / f.name).symlink_to(os.path.relpath(blob, snap))
    return commit


PULL_SCRIPT = """
import json, sys
import numpy as np
from app import resolve_weights
import facesim
try:
    folder = resolve_weights(sys.argv[1])
except facesim.FaceSimError as exc:
    print(json.dumps({"error": str(exc)})); sys.exit(0)
face = facesim.extract_faces(sys.argv[2])[0]
print(json.dumps({"folder": folder, "embedding": facesim.embed(face, weights=folder)[0].tolist()}))
"""


def test_pull_from_cache_offline_embeds_identically(tmp_path, face_path):
    cache = tmp_path / "hub"
    make_hf_cache(cache, "someone/facesim", WEIGHTS, "main")
    make_hf_cache_rev = make_hf_cache  # a pinned branch, in another repo of the same cache
    make_hf_cache_rev(cache, "someone/facesim-v", WEIGHTS, "v1")
    env = {**os.environ, "HF_HUB_CACHE": str(cache), "HF_HUB_OFFLINE": "1"}

    def run(spec):
        r = subprocess.run([sys.executable, "-c", PULL_SCRIPT, spec, str(face_path)], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        return json.loads(r.stdout.strip().splitlines()[-1])

    import facesim

    local = facesim.embed(facesim.extract_faces(face_path)[0], weights=WEIGHTS)[0]
    got = run("hf://someone/facesim")
    assert got["folder"].startswith(str(cache))
    assert np.allclose(got["embedding"], local, atol=1e-6)
    pinned = run("hf://someone/facesim-v@v1")
    assert np.allclose(pinned["embedding"], local, atol=1e-6)
    for missing in ("hf://someone/absent", "hf://someone/facesim@nope"):
        err = run(missing)["error"]
        assert err.startswith("weights: ") and "cache" in err


def test_app_with_unknown_hub_weights_exits_with_one_line(tmp_path):
    env = {**os.environ, "HF_HUB_CACHE": str(tmp_path / "empty"), "HF_HUB_OFFLINE": "1"}
    r = subprocess.run([sys.executable, "app.py", "--weights", "hf://nobody/nothing@v9"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert r.stderr.strip().splitlines()[-1].startswith("FaceSim cannot start: weights: hf://nobody/nothing@v9")
