"""Face datasets: folder layouts, the protocol's identity split, and the cache of extracted crops."""

from __future__ import annotations

import logging
import os
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
WILD = SHARED_DATA / "celeba-wild-val"
UTKFACE = SHARED_DATA / "utkface-adults"
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


def list_images(root: str | Path) -> list[Path]:
    """Every image under `root` (recursively), sorted: an unlabelled set such as utkface-adults."""
    return sorted(p for p in Path(root).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def extra_key(path: str | Path) -> str:
    """How the teacher file and the crop cache name an image of an unlabelled set ("extra/<file>")."""
    return f"extra/{Path(path).name}"


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


#: Names the extraction pipeline in crop caches, so that a cache made by another pipeline is rebuilt
#: (v3: the short-range fallback of facesim.detect and OpenCV JPEG decoding; v4: LiteRT, reduced JPEG decodes).
PIPELINE = "blazeface-full+short-range/template-0.30/v4"


def default_chip():
    from facesim.align import DEFAULT_CHIP

    return DEFAULT_CHIP


def cache_tag(chip) -> tuple[str, str]:
    """(file-name suffix, pipeline string) of crop caches cut for `chip` (the small CNN's keeps its old names)."""
    from facesim.align import DEFAULT_CHIP

    suffix = "" if chip.key == DEFAULT_CHIP.key else f"_{chip.fit}{chip.size}"
    return suffix, f"{PIPELINE}/{chip.key}" if suffix else PIPELINE


def extract_one(path: str, chip=None) -> tuple[np.ndarray, bool]:
    """The crop the app would use for this image (its best face), or the protocol's centre-crop fallback."""
    from facesim import NoFaceFoundError
    from facesim.align import center_crop
    from facesim.api import faces_in
    from facesim.image import open_photo

    chip = chip or default_chip()
    photo = open_photo(path)  # decoded as the app decodes it (a large JPEG at the size the work needs)
    try:
        return faces_in(photo, chip=chip)[0].crop, False
    except NoFaceFoundError:
        return center_crop(photo.at(1), chip=chip), True


def extract_tight(path: str, chip=None) -> tuple[np.ndarray, bool]:
    """The aligned crop of a tight face crop (utkface): found on a reflected border, as a photo would show it.

    Returns (crop, False), or (empty crop, True) when no face is found: such images are left out.
    """
    import cv2

    from facesim import NoFaceFoundError, load_image
    from facesim.api import faces_in

    chip = chip or default_chip()
    image = load_image(path)
    pad = image.shape[0] // 3
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REFLECT_101)
    try:
        return faces_in(padded, chip=chip)[0].crop, False
    except NoFaceFoundError:
        return np.zeros((chip.size, chip.size, 3), np.uint8), True


def _extract_chunk(args: tuple) -> tuple[np.ndarray, np.ndarray]:
    paths, tight, chip = args
    out = [(extract_tight if tight else extract_one)(p, chip) for p in paths]
    return np.stack([c for c, _ in out]), np.array([f for _, f in out], dtype=bool)


def _extract_all(files: list[str], *, workers: int, tight: bool, desc: str, chip=None) -> tuple[np.ndarray, np.ndarray]:
    from .progress import progress

    chunks = [(files[i : i + 128], tight, chip or default_chip()) for i in range(0, len(files), 128)]
    crops, fallback = [], []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        for c, f in progress(pool.map(_extract_chunk, chunks), total=len(chunks), desc=desc):
            crops.append(c)
            fallback.append(f)
    return np.concatenate(crops), np.concatenate(fallback)


def extra_faceset(root: str | Path = UTKFACE, *, workers: int = 2, chip=None) -> tuple[np.ndarray, tuple[str, ...]]:
    """Aligned crops of an unlabelled set of face crops (for distillation only), cached; faceless images dropped.

    Returns:
        (crops (N, CROP_SIZE, CROP_SIZE, 3) uint8 RGB, keys "extra/<file>" as the teacher file names them).
    """
    files = [str(f) for f in list_images(root)]
    keys = tuple(extra_key(f) for f in files)
    suffix, pipeline = cache_tag(chip or default_chip())
    cache = CACHE_DIR / f"{Path(root).name}_crops{suffix}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["pipeline"]) == pipeline and tuple(z["all_keys"].tolist()) == keys:
                return z["crops"], tuple(z["keys"].tolist())
    crops, missed = _extract_all(files, workers=workers, tight=True, desc=f"extracting {Path(root).name}", chip=chip)
    kept = tuple(k for k, m in zip(keys, missed) if not m)
    crops = crops[~missed]
    log.info("%s: %d faces, %d without a face found (left out)", Path(root).name, len(kept), int(missed.sum()))
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(str(cache) + ".tmp.npz")
    np.savez(tmp, crops=crops, keys=np.array(kept), all_keys=np.array(keys), pipeline=np.array(pipeline))
    tmp.replace(cache)
    return crops, kept


def build_faceset(root: str | Path, *, people: dict[str, list[Path]] | None = None, workers: int = 2,
                  cache: str | Path | None = None, chip=None) -> FaceSet:
    """Extract every image of a folder-per-person dataset with FaceSim's pipeline; cache as .npz.

    Args:
        root: dataset folder.
        people: restrict to these people (default: all of `list_people(root)`).
        workers: processes for extraction.
        cache: .npz path; reused when it exists and holds the same files cut for the same chip.
        chip: the encoder's chip (`ModelConfig.chip`; default the small CNN's).
    """
    _, pipeline = cache_tag(chip or default_chip())
    root = Path(root)
    people = people if people is not None else list_people(root)
    names = tuple(sorted(people))
    paths = tuple(str(f.relative_to(root)) for n in names for f in people[n])
    labels = np.array([k for k, n in enumerate(names) for _ in people[n]], dtype=np.int32)
    if cache is not None and Path(cache).is_file():
        with np.load(cache, allow_pickle=False) as z:
            if tuple(z["paths"].tolist()) == paths and str(z.get("pipeline", "")) == pipeline:
                log.info("using cached crops %s", cache)
                return FaceSet(z["crops"], paths, names, labels, z["fallback"])
    crops, fallback = _extract_all([str(root / p) for p in paths], workers=workers, tight=False,
                                   desc=f"extracting {root.name}", chip=chip)
    fs = FaceSet(crops, paths, names, labels, fallback)
    if cache is not None:
        Path(cache).parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache) + ".tmp.npz")
        np.savez(tmp, crops=fs.crops, paths=np.array(paths), fallback=fs.fallback, pipeline=np.array(pipeline))
        tmp.replace(cache)
    log.info("%d images, %d people, %d fallbacks", len(paths), len(names), int(fs.fallback.sum()))
    return fs


def lfw_faceset(workers: int = 2, chip=None) -> FaceSet:
    """All of LFW, extracted for `chip` and cached under CACHE_DIR."""
    suffix, _ = cache_tag(chip or default_chip())
    return build_faceset(LFW, workers=workers, cache=CACHE_DIR / f"{LFW.name}_crops{suffix}.npz", chip=chip)


# ---------------------------------------------------------------------------------------------------
# PROTOCOL.md v2 part B: the in-the-wild validation photos (validation only: never trained on).


def read_tsv(path: str | Path) -> list[list[str]]:
    """Rows of a tab-separated file with a header line (the header is dropped)."""
    lines = Path(path).read_text().split("\n")[1:]
    return [ln.split("\t") for ln in lines if ln.strip()]


def wild_pairs(root: str | Path = WILD) -> tuple[list[tuple[str, str]], np.ndarray]:
    """The 600 wild validation pairs as (path, path) and their same-person flags."""
    rows = read_tsv(Path(root) / "pairs.tsv")
    img = Path(root) / "images"
    return [(str(img / a), str(img / b)) for a, b, _ in rows], np.array([s == "1" for _, _, s in rows])


def wild_triplets(root: str | Path = WILD) -> list[tuple[str, str, str]]:
    """The 500 wild validation triplets (anchor, positive, negative) as paths."""
    img = Path(root) / "images"
    return [tuple(str(img / p) for p in row) for row in read_tsv(Path(root) / "triplets.tsv")]


def wild_photos(root: str | Path = WILD) -> list[str]:
    """All 1,561 wild validation photos."""
    return sorted(str(p) for p in (Path(root) / "images").glob("*.jpg"))


def photo_faces(path: str, chip=None) -> tuple:
    """Every face the public API finds in a photo, cut for `chip`, clearest first (empty when none)."""
    from facesim import NoFaceFoundError
    from facesim.api import faces_in
    from facesim.image import open_photo

    try:  # decoded as the app decodes it (a large JPEG at the size the work needs)
        return tuple(faces_in(open_photo(path, name=Path(path).name), name=Path(path).name,
                              chip=chip or default_chip()))
    except NoFaceFoundError:
        return ()


def best_face(path: str, chip=None):
    """The face the public API uses for a photo (its clearest face), or None when no face is found."""
    faces = photo_faces(path, chip)
    return faces[0] if faces else None


def _best_crops(args) -> tuple[np.ndarray, np.ndarray]:
    paths, chip = args
    crops, found = [], []
    for p in paths:
        f = best_face(p, chip)
        crops.append(f.crop if f is not None else np.zeros((chip.size, chip.size, 3), np.uint8))
        found.append(f is not None)
    return np.stack(crops), np.array(found)


def wild_validation(root: str | Path = WILD, *, workers: int = 2, chip=None):
    """Crops of the wild pairs' photos for checkpoint selection during training (cached, never trained on).

    Returns:
        (crops, found, (index_a, index_b, same)): a pair with a photo where no face was found must be
        scored as wrong by the caller (`found` is False for that photo).
    """
    pairs, same = wild_pairs(root)
    paths = sorted({p for pr in pairs for p in pr})
    chip = chip or default_chip()
    suffix, pipeline = cache_tag(chip)
    cache = CACHE_DIR / f"wild_validation_crops{suffix}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            if str(z["pipeline"]) == pipeline and tuple(z["paths"].tolist()) == tuple(paths):
                crops, found = z["crops"], z["found"]
                cache = None
    if cache is not None:
        chunks = [(paths[i : i + 64], chip) for i in range(0, len(paths), 64)]
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_best_crops, chunks))
        crops, found = np.concatenate([c for c, _ in parts]), np.concatenate([f for _, f in parts])
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(str(cache) + ".tmp.npz")
        np.savez(tmp, crops=crops, found=found, paths=np.array(paths), pipeline=np.array(pipeline))
        tmp.replace(cache)
    index = {p: i for i, p in enumerate(paths)}
    a = np.array([index[x] for x, _ in pairs])
    b = np.array([index[y] for _, y in pairs])
    return crops, found, (a, b, same)
