"""Hugging Face Hub access, push and pull of weights folders; the only module that talks to the Hub.

Imported only where it is used (`--weights hf://...`, `python -m training.push`), so that the rest of
FaceSim works offline without it.
"""

from __future__ import annotations

import json
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

from .errors import WeightsError
from .model import CONFIG_FILE, ModelConfig, file_sha256

__all__ = ["parse_spec", "download_weights", "check_folder", "push_folder", "folder_files", "HubError",
           "space_files", "push_space"]

log = logging.getLogger(__name__)

#: What a complete weights folder holds besides its weights file (plots are optional extras).
REQUIRED = (CONFIG_FILE, "metrics.json", "README.md")
OPTIONAL = ("roc.png", "coverage.png", "reliability.png", "training_curves.png", "history.json")


class HubError(WeightsError):
    """The Hub could not be reached or refused the request (message fits on one line)."""


def parse_spec(spec: str) -> tuple[str, str | None]:
    """"hf://user/name[@revision]" -> ("user/name", revision or None)."""
    body = spec[len("hf://"):] if spec.startswith("hf://") else spec
    repo, _, revision = body.partition("@")
    parts = repo.strip("/").split("/")
    if len(parts) != 2 or not all(parts):
        raise WeightsError(f"{spec!r} is not of the form hf://user/name[@revision]", input_name="weights")
    return "/".join(parts), (revision or None)


def download_weights(spec: str, *, cache_dir: str | Path | None = None) -> Path:
    """Download (once, into the Hugging Face cache) and verify the weights folder `spec` names.

    With HF_HUB_OFFLINE=1 the cache alone is used.

    Args:
        spec: "hf://user/name" or "hf://user/name@revision" (branch, tag or commit).
        cache_dir: Hugging Face cache to use (default: the standard one).

    Returns:
        The local folder (a snapshot in the cache).

    Raises:
        HubError: the repository or revision cannot be found (online or in the cache).
        WeightsError: the downloaded folder is incomplete or its weights do not match its config.
    """
    from huggingface_hub import hf_hub_download, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError, OfflineModeIsEnabled

    repo_id, revision = parse_spec(spec)
    try:
        # The folder's config names its files: fetch it first, then exactly those (no list to keep in step).
        config = ModelConfig.read(Path(hf_hub_download(repo_id, CONFIG_FILE, revision=revision,
                                                       cache_dir=cache_dir)).parent)
        local = snapshot_download(repo_id, revision=revision, cache_dir=cache_dir,
                                  allow_patterns=published_files(config))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled) as exc:
        raise HubError(f"{spec} is not in the local Hugging Face cache and the Hub cannot be reached "
                       f"({type(exc).__name__})", input_name="weights") from None
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - network, HTTP and validation errors of many kinds
        raise HubError(f"cannot download {spec}: {_one_line(exc)}", input_name="weights") from None
    folder = Path(local)
    check_folder(folder, require_metrics=False)
    return folder


def check_folder(folder: str | Path, *, require_metrics: bool = True) -> list[str]:
    """Verify a weights folder is complete and self-consistent; return the files it holds.

    The weights file's sha256 must equal the checksum recorded at evaluation time (config.json
    `info.weights_sha256`, and `metrics.json` when metrics are required); the exported inference graph, when
    the config names one, must match `info.inference_sha256`.

    Raises:
        WeightsError: a file is missing, or a weights file does not match its recorded checksum.
    """
    folder = Path(folder)
    config = ModelConfig.read(folder)
    needed = [config.weights_file, CONFIG_FILE] + ([f for f in REQUIRED if f != CONFIG_FILE] if require_metrics else [])
    if config.inference_file:
        needed.append(config.inference_file)
    missing = [f for f in needed if not (folder / f).is_file()]
    if missing:
        raise WeightsError(f"{folder} is incomplete: missing {', '.join(missing)}", input_name="weights")
    sha = file_sha256(folder / config.weights_file)
    if config.info.get("weights_sha256") not in (None, sha):
        raise WeightsError(f"{config.weights_file} does not match the checksum in config.json", input_name="weights")
    graph_sha = config.info.get("inference_sha256")
    if config.inference_file and graph_sha not in (None, file_sha256(folder / config.inference_file)):
        raise WeightsError(f"{config.inference_file} does not match the checksum in config.json", input_name="weights")
    if require_metrics:
        metrics = json.loads((folder / "metrics.json").read_text())
        if metrics.get("weights_sha256") != sha:
            raise WeightsError("metrics.json was not measured on these weights (checksum differs); "
                               "run python -m training.evaluate first", input_name="weights")
        if "pair_accuracy" not in metrics:
            raise WeightsError("metrics.json has no test figures; run python -m training.evaluate first",
                               input_name="weights")
    return folder_files(folder, config)


def published_files(config: ModelConfig) -> list[str]:
    """Every file a weights folder with this config may publish (sorted; the optional ones may be absent)."""
    names = {config.weights_file, *REQUIRED, *OPTIONAL} | ({config.inference_file} if config.inference_file else set())
    return sorted(names)


def folder_files(folder: str | Path, config: ModelConfig | None = None) -> list[str]:
    """The files of a weights folder that are published (sorted)."""
    folder = Path(folder)
    return [n for n in published_files(config or ModelConfig.read(folder)) if (folder / n).is_file()]


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False, revision: str | None = None,
                dry_run: str | Path | None = None, api=None) -> str:
    """Push a complete weights folder to the Hub as one commit; return the commit URL.

    Args:
        folder: a weights folder that `check_folder` accepts.
        repo_id: "user/name" of the model repository (created if missing).
        private: create the repository private.
        revision: branch to commit to (created if missing; default main).
        dry_run: instead of uploading, copy exactly the files that would be uploaded into this folder
            and return its path.
        api: an `huggingface_hub.HfApi` (default: a new one; the token comes from HF_TOKEN or the stored
            login, never from an argument, and is never logged or written).

    Raises:
        WeightsError: the folder is incomplete or inconsistent.
        HubError: no token, a bad token, or the Hub cannot be reached.
    """
    folder = Path(folder)
    files = check_folder(folder)
    parse_spec(repo_id)
    if dry_run is not None:
        return _copy_files(folder, files, dry_run)
    api = _api(api)
    with _hub_errors("push"):
        api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
        if revision:
            api.create_branch(repo_id, branch=revision, repo_type="model", exist_ok=True)
        info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model", revision=revision,
                                 allow_patterns=files, commit_message="FaceSim weights: encoder, config, metrics, card")
    url = getattr(info, "commit_url", None) or str(info)
    log.info("pushed %d files to %s", len(files), repo_id)
    return url


#: What a Space runs: the app, the library, the shipped weights, the example photos, and how to install them.
SPACE_FILES = ("app.py", "requirements.txt", "README.md")
SPACE_FOLDERS = {"facesim": ("*.py",), "facesim/models": ("*.tflite", "*.md", "*.txt"),
                 "examples": ("*.jpg", "*.png", "*.md"), "docs": ("*.png",)}


def space_files(root: str | Path) -> list[str]:
    """The repository files a Hugging Face Space needs (relative POSIX paths, sorted).

    Raises:
        WeightsError: the checkout lacks a needed file, the README has no Space front matter, or the
            shipped weights folder is incomplete.
    """
    root = Path(root)
    missing = [f for f in SPACE_FILES if not (root / f).is_file()]
    if missing:
        raise WeightsError(f"{root} is not a FaceSim checkout: missing {', '.join(missing)}", input_name="space")
    readme = (root / "README.md").read_text()
    if not readme.startswith("---\n") or "sdk: gradio" not in readme.split("\n---", 1)[0]:
        raise WeightsError("README.md lacks the Space front matter (---, sdk: gradio, ...)", input_name="space")
    files = list(SPACE_FILES) + [f"weights/{name}" for name in check_folder(root / "weights")]
    for folder, patterns in SPACE_FOLDERS.items():
        for pattern in patterns:
            files += [p.relative_to(root).as_posix() for p in (root / folder).glob(pattern) if p.is_file()]
    return sorted(set(files))


def push_space(root: str | Path, space_id: str, *, private: bool = False, dry_run: str | Path | None = None,
               api=None) -> str:
    """Create or update a Gradio Space from a checkout in one commit; return the Space's URL.

    The commit holds exactly `space_files(root)`; files of an earlier deploy that are no longer needed are
    deleted in the same commit.

    Args:
        root: the repository checkout.
        space_id: "user/name" of the Space (created if missing, SDK gradio).
        private: create the Space private.
        dry_run: instead of uploading, copy exactly the files that would be uploaded into this folder and
            return its path.
        api: an `huggingface_hub.HfApi` (default: a new one; the token comes from HF_TOKEN or the stored
            login, never from an argument, and is never logged or written).

    Raises:
        WeightsError: the checkout is incomplete.
        HubError: no token, a bad token, or the Hub cannot be reached.
    """
    root = Path(root)
    files = space_files(root)
    parse_spec(space_id)
    if dry_run is not None:
        return _copy_files(root, files, dry_run)
    api = _api(api)
    with _hub_errors("deploy"):
        api.create_repo(space_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True)
        api.upload_folder(folder_path=str(root), repo_id=space_id, repo_type="space", allow_patterns=files,
                          delete_patterns=["*", "**/*"], commit_message="Deploy FaceSim: app, library, weights")
    log.info("deployed %d files to the Space %s", len(files), space_id)
    return f"https://huggingface.co/spaces/{space_id}"


def _copy_files(src: Path, files: list[str], dry_run: str | Path) -> str:
    """A dry run: exactly the files an upload would send, copied into `dry_run` (sub-folders kept)."""
    out = Path(dry_run)
    for name in files:
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(src / name, out / name)
    return str(out)


@contextmanager
def _hub_errors(action: str):
    """Hub failures as one-line `HubError`s: offline, refused token, refused request, unreachable."""
    from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

    try:
        yield
    except OfflineModeIsEnabled:
        raise HubError(f"cannot {action}: offline mode is on (HF_HUB_OFFLINE=1)", input_name="hub") from None
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        if status in (401, 403):
            raise HubError(f"the Hub refused the token (HTTP {status}): check HF_TOKEN", input_name="hub") from None
        raise HubError(f"the Hub refused the {action}: {_one_line(exc)}", input_name="hub") from None
    except (OSError, ConnectionError) as exc:
        raise HubError(f"cannot reach the Hugging Face Hub: {_one_line(exc)}", input_name="hub") from None


def _api(api):
    if api is not None:
        return api
    from huggingface_hub import HfApi, get_token

    if not get_token():
        raise HubError("no Hugging Face token: set HF_TOKEN or run `hf auth login`", input_name="hub")
    return HfApi()


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"[:300]
