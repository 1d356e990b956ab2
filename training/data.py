"""Face datasets: folder layouts, the protocol's identity split, and the cache of extracted crops."""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".pgm", ".bmp", ".webp"}
#: Where the shared data lives relative to a checkout (`../shared/data` beside the repository).
SHARED_DATA = Path(os.environ.get("FACESIM_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))
LFW = SHARED_DATA / "lfw-deepfunneled"
ATT = SHARED_DATA / "att_faces"
CACHE_DIR = Path(os.environ.get("FACESIM_CACHE", Path(__file__).resolve().parents[1] / ".cache"))

#: PROTOCOL.md v1: folds of pairs.txt (0-based) held out for validation and test.
VALIDATION_FOLDS = (7,)
TEST_FOLDS = (8, 9)


def list_people(root: str | Path) -> dict[str, list[Path]]:
    """Images per person for a folder-per-person dataset.

    Works for LFW (`Name/Name_0001.jpg`), the seed's numbered layout (`Extracted Faces/<id>/<n>.jpg`)
    and AT&T (`s1/1.pgm`). Files are sorted naturally (2 before 10) so that indices are stable.
    """
    root = Path(root)
    people = {}
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        files = [f for f in d.iterdir() if f.suffix.lower() in IMAGE_EXTENSIONS]
        if files:
            people[d.name] = sorted(files, key=_natural_key)
    return people


def _natural_key(path: Path):
    import re

    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path.name)]


@dataclass(frozen=True)
class Pair:
    a: str  # relative path "Name/Name_0001.jpg"
    b: str
    same: bool
    fold: int


def read_pairs(root: str | Path = LFW) -> list[Pair]:
    """The 6,000 pairs of LFW's `pairs.txt` (View 2), with their 0-based fold."""
    lines = (Path(root) / "pairs.txt").read_text().split("\n")
    n_folds, n = (int(v) for v in lines[0].split())
    pairs = []
    rows = [ln.split() for ln in lines[1:] if ln.strip()]
    for k, row in enumerate(rows):
        fold = k // (2 * n)
        if len(row) == 3:
            name, i, j = row
            pairs.append(Pair(_rel(name, i), _rel(name, j), True, fold))
        else:
            n1, i, n2, j = row
            pairs.append(Pair(_rel(n1, i), _rel(n2, j), False, fold))
    if len(pairs) != n_folds * 2 * n:
        raise ValueError(f"pairs.txt: expected {n_folds * 2 * n} pairs, found {len(pairs)}")
    return pairs


def _rel(name: str, idx: str) -> str:
    return f"{name}/{name}_{int(idx):04d}.jpg"


@dataclass(frozen=True)
class Split:
    """PROTOCOL.md's identity split of LFW."""

    train_people: tuple[str, ...]
    heldout_people: frozenset[str]
    validation_pairs: tuple[Pair, ...] = field(repr=False)
    test_pairs: tuple[Pair, ...] = field(repr=False)
    test_people: frozenset[str] = field(repr=False)


def protocol_split(root: str | Path = LFW) -> Split:
    """Split LFW by identity: train = everyone in no pair of folds 7-9 (PROTOCOL.md v1)."""
    pairs = read_pairs(root)
    held = VALIDATION_FOLDS + TEST_FOLDS
    heldout = frozenset(p.split("/")[0] for pr in pairs if pr.fold in held for p in (pr.a, pr.b))
    test_people = frozenset(p.split("/")[0] for pr in pairs if pr.fold in TEST_FOLDS for p in (pr.a, pr.b))
    people = list_people(root)
    train = tuple(sorted(name for name in people if name not in heldout))
    split = Split(
        train_people=train,
        heldout_people=heldout,
        validation_pairs=tuple(p for p in pairs if p.fold in VALIDATION_FOLDS),
        test_pairs=tuple(p for p in pairs if p.fold in TEST_FOLDS),
        test_people=test_people,
    )
    check_no_leak(split.train_people, split.heldout_people)
    return split


class LeakError(RuntimeError):
    """A held-out person would reach training."""


def check_no_leak(train_people, heldout_people) -> None:
    """Raise LeakError if any held-out person is among the training people."""
    leaked = sorted(set(train_people) & set(heldout_people))
    if leaked:
        raise LeakError(f"{len(leaked)} held-out people in the training set, e.g. {leaked[:3]}")


# ---------------------------------------------------------------------------------------------------
# Crops, extracted with the app's own pipeline and cached.


@dataclass(frozen=True)
class FaceSet:
    """Extracted face crops of a dataset: crops[i] is image paths[i] of person labels[i]."""

    crops: np.ndarray = field(repr=False)  # (N, crop, crop, 3) uint8 RGB
    paths: tuple[str, ...] = field(repr=False)  # relative to the dataset root
    names: tuple[str, ...]  # person name per label
    labels: np.ndarray = field(repr=False)  # (N,) int32
    fallback: np.ndarray = field(repr=False)  # (N,) bool: no face found, centre crop used

    def index(self) -> dict[str, int]:
        return {p: i for i, p in enumerate(self.paths)}

    def subset(self, people) -> FaceSet:
        keep = set(people)
        idx = np.array([i for i, lab in enumerate(self.labels) if self.names[lab] in keep], dtype=np.int64)
        names = tuple(sorted({self.names[self.labels[i]] for i in idx}))
        remap = {n: k for k, n in enumerate(names)}
        labels = np.array([remap[self.names[self.labels[i]]] for i in idx], dtype=np.int32)
        return FaceSet(self.crops[idx], tuple(self.paths[i] for i in idx), names, labels, self.fallback[idx])


def extract_one(path: str) -> tuple[np.ndarray, bool]:
    """The crop the app would use for this image (largest face), or the protocol's centre-crop fallback."""
    from facesim import NoFaceFoundError, load_image
    from facesim.detect import center_crop_face, detect_faces

    image = load_image(path)
    try:
        return detect_faces(image)[0].crop, False
    except NoFaceFoundError:
        return center_crop_face(image).crop, True


def _extract_chunk(paths: list[str]) -> tuple[np.ndarray, np.ndarray]:
    out = [extract_one(p) for p in paths]
    return np.stack([c for c, _ in out]), np.array([f for _, f in out], dtype=bool)


def build_faceset(root: str | Path, *, people: dict[str, list[Path]] | None = None, workers: int = 2,
                  cache: str | Path | None = None) -> FaceSet:
    """Extract every image of a folder-per-person dataset with FaceSim's pipeline; cache as .npz.

    Args:
        root: dataset folder.
        people: restrict to these people (default: all of `list_people(root)`).
        workers: processes for extraction.
        cache: .npz path; reused when it exists and holds the same files.
    """
    from facesim.detect import CROP_SIZE

    root = Path(root)
    people = people if people is not None else list_people(root)
    names = tuple(sorted(people))
    paths = tuple(str(f.relative_to(root)) for n in names for f in people[n])
    labels = np.array([k for k, n in enumerate(names) for _ in people[n]], dtype=np.int32)
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as z:
            if tuple(z["paths"].tolist()) == paths and z["crops"].shape[1] == CROP_SIZE:
                log.info("using cached crops %s", cache)
                return FaceSet(z["crops"], paths, names, labels, z["fallback"])
    t0 = time.time()
    chunks = [[str(root / p) for p in paths[i : i + 256]] for i in range(0, len(paths), 256)]
    crops, fallback = [], []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for k, (c, f) in enumerate(pool.map(_extract_chunk, chunks), 1):
            crops.append(c)
            fallback.append(f)
            log.info("extracted %d/%d images (%.0f s)", min(k * 256, len(paths)), len(paths), time.time() - t0)
    fs = FaceSet(np.concatenate(crops), paths, names, labels, np.concatenate(fallback))
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache) + ".tmp.npz")
        np.savez(tmp, crops=fs.crops, paths=np.array(paths), fallback=fs.fallback)
        tmp.replace(cache)
    log.info("%d images, %d people, %d fallbacks", len(paths), len(names), int(fs.fallback.sum()))
    return fs


def lfw_faceset(workers: int = 2) -> FaceSet:
    """All of LFW, extracted and cached under CACHE_DIR."""
    return build_faceset(LFW, workers=workers, cache=CACHE_DIR / f"{LFW.name}_crops.npz")
