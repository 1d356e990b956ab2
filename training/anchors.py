"""Calibrate anchor sets (several photos of the anchor's person): `python -m training.anchors`.

For every validation pair (LFW fold 7 and the wild pairs), the anchor photo gets K-1 more photos of the same
person, drawn with fixed seeds and never the candidate photo or a near-duplicate of it (the wild set's
`group` column) or of the anchor. Each way of combining the photos is scored at a threshold chosen for it and
for that K, both at the threshold chosen on all pairs (the figure config.json ships) and cross-validated by
pair (10 folds: no pair is scored at a threshold chosen with it). `training.evaluate` calls `calibrate`, which
writes the shipped way's threshold, probability and uncertain rule for K = 2..5 into config.json, and the
outlier limits that leave out a photo of someone else.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facesim.anchors import MAX_ANCHORS, combine
from facesim.uncertainty import Judge, features

from . import data as D
from .metrics import best_threshold
from .uncertainty import (FOLDS, WILD_WEIGHT, brier, choose_max_doubt, cv_probability, doubt, ece, fit_logistic,
                          fold_ids)

log = logging.getLogger("training.anchors")

#: Seeded draws of the extra anchor photos per pair (their figures are averaged).
DRAWS = 3
#: The ways of combining K photos that were compared; "centroid" ships (facesim.anchors.combine).
METHODS = ("centroid", "mean", "min", "weighted")
SHIPPED = "centroid"
#: A genuine photo of the person is left out this rarely (the outlier limit is this quantile of the
#: distances of a photo to the mean descriptor of the person's other photos).
OUTLIER_QUANTILE = 0.99


def identities(lfw: Path = D.LFW, wild: Path = D.WILD) -> tuple[dict[str, str], dict[str, str]]:
    """Photo path -> identity, and photo path -> near-duplicate group (LFW photos are their own group)."""
    ident, group = {}, {}
    for name, files in D.list_people(lfw).items():
        for f in files:
            ident[str(f)], group[str(f)] = f"lfw:{name}", str(f)
    img = Path(wild) / "images"
    for path, person, g in D.read_tsv(Path(wild) / "identities.tsv"):
        ident[str(img / path)], group[str(img / path)] = f"wild:{person}", f"wild:{g}"
    return ident, group


@dataclass
class Rows:
    """The K-photo answers of one draw: per pair kept, the distances of each method and the judge's inputs."""

    k: int
    draw: int
    pair: np.ndarray  # index of the pair in the pooled validation list
    wild: np.ndarray  # bool: a wild pair
    same: np.ndarray
    d: dict  # method -> distances
    qualities: list  # per row, the qualities of the anchor faces and the candidate's face


def draw_rows(k: int, draw: int, pairs, same, is_wild, emb, ident, group) -> Rows:
    """Anchor sets of `k` photos for every pair whose person has enough other photos (seed = draw)."""
    rng = np.random.default_rng([k, draw])
    by: dict[str, list[str]] = {}
    for p, person in ident.items():
        by.setdefault(person, []).append(p)
    out = {m: [] for m in METHODS}
    keep, quals, ys, wilds = [], [], [], []
    for i, ((a, b), s) in enumerate(zip(pairs, same)):
        emb(a), emb(b)
        if not emb.every_face.get(a) or not emb.every_face.get(b):
            continue
        pool = sorted(p for p in by[ident[a]] if p not in (a, b) and group[p] not in (group[a], group[b]))
        if len(pool) < k - 1:
            continue
        extra = [pool[j] for j in rng.choice(len(pool), size=k - 1, replace=False)] if k > 1 else []
        for p in extra:
            emb(p)
        anchors = [a] + [p for p in extra if emb.every_face.get(p)]
        if len(anchors) < k:
            continue
        ea = np.stack([emb.all_emb[p][0] for p in anchors])
        eb = emb.all_emb[b]
        dm = np.linalg.norm(eb[:, None] - ea[None], axis=2)  # candidate faces x anchor photos
        c = combine(ea)
        dc = np.linalg.norm(eb - c[None], axis=1)
        j = int(np.argmin(dc))
        out["centroid"].append(float(dc[j]))
        out["mean"].append(float(dm.mean(1).min()))
        out["min"].append(float(dm.min()))
        w = np.array([f.score * min(f.quality.eye_distance, 40.0) for f in (emb.every_face[p][0] for p in anchors)])
        out["weighted"].append(float((dm @ (w / w.sum())).min()))
        quals.append([emb.every_face[p][0].quality for p in anchors] + [emb.every_face[b][j].quality])
        keep.append(i)
        ys.append(bool(s))
        wilds.append(bool(is_wild[i]))
    return Rows(k, draw, np.array(keep), np.array(wilds), np.array(ys), {m: np.array(v) for m, v in out.items()}, quals)


def _pair_folds(pair: np.ndarray) -> np.ndarray:
    return fold_ids(len(pair), pair)


def method_figures(rows: list[Rows], method: str) -> dict:
    """Accuracy of one way of combining, over the draws: at the threshold chosen on all pairs, and by pair
    folds (cross-validated); on the wild pairs and on LFW fold 7."""
    d = np.concatenate([r.d[method] for r in rows])
    y = np.concatenate([r.same for r in rows])
    wild = np.concatenate([r.wild for r in rows])
    pair = np.concatenate([r.pair for r in rows])
    thr, _ = best_threshold(d, y)
    fold = _pair_folds(pair)
    cv = np.zeros(len(d), bool)
    for f in range(FOLDS):
        t, _ = best_threshold(d[fold != f], y[fold != f])
        cv[fold == f] = (d[fold == f] <= t) == y[fold == f]
    at = (d <= thr) == y
    return {"threshold": thr, "wild_accuracy": float(at[wild].mean()), "wild_accuracy_cv": float(cv[wild].mean()),
            "lfw_fold7_accuracy": float(at[~wild].mean()) if (~wild).any() else None,
            "lfw_fold7_accuracy_cv": float(cv[~wild].mean()) if (~wild).any() else None,
            "wild_pairs": int(wild.sum() // len(rows)), "lfw_fold7_pairs": int((~wild).sum() // len(rows)),
            "wild_accuracy_by_draw": [float(((r.d[method] <= thr) == r.same)[r.wild].mean()) for r in rows]}


def fit_k(rows: list[Rows], threshold: float) -> tuple[Judge, dict]:
    """The judge for K photos of the shipped way: logistic on the margin to this K's threshold and the
    worse face's quality, its uncertain cut chosen as for one photo (cross-validated by pair)."""
    d = np.concatenate([r.d[SHIPPED] for r in rows])
    y = np.concatenate([r.same for r in rows]).astype(np.float64)
    wild = np.concatenate([r.wild for r in rows])
    pair = np.concatenate([r.pair for r in rows])
    x = np.array([features(dd, threshold, q) for r in rows for dd, q in zip(r.d[SHIPPED], r.qualities)])
    guard = np.array([any(qq.reasons for qq in q) for r in rows for q in r.qualities])
    weight = np.where(wild, WILD_WEIGHT, 1.0)
    oof = cv_probability(x, y, weight, list(range(x.shape[1])), fold=_pair_folds(pair))
    correct = (d <= threshold) == (y > 0.5)
    dbt = doubt(oof, d, threshold)
    tau = choose_max_doubt(dbt[wild], correct[wild], guard[wild])
    b, w = fit_logistic(x, y, weight)
    judge = Judge(threshold=float(threshold), intercept=b, coef=tuple(float(c) for c in w), max_doubt=round(tau, 4))
    conf = (dbt <= judge.max_doubt) & ~guard
    figures = {"wild_confident_share": float(conf[wild].mean()),
               "wild_confident_accuracy": float(correct[wild & conf].mean()) if (wild & conf).any() else None,
               "lfw_fold7_confident_share": float(conf[~wild].mean()) if (~wild).any() else None,
               "lfw_fold7_confident_accuracy": float(correct[~wild & conf].mean()) if (~wild & conf).any() else None,
               "wild_ece": ece(oof[wild], y[wild]), "wild_brier": brier(oof[wild], y[wild])}
    return judge, figures


def outlier_limits(emb, ident, group, *, seed: int = 0, draws: int = 2000) -> dict[str, float]:
    """Per number of other photos (1-4), the distance from a photo to the mean descriptor of the person's
    other photos that `OUTLIER_QUANTILE` of genuine photos stay within (wild identities, seeded draws)."""
    rng = np.random.default_rng(seed)
    by: dict[str, list[str]] = {}
    for p, person in ident.items():
        if person.startswith("wild:") and emb.every_face.get(p):
            by.setdefault(person, []).append(p)
    people = sorted(by)
    limits = {}
    for n in range(1, MAX_ANCHORS):
        dist = []
        for _ in range(draws):
            photos = by[people[rng.integers(len(people))]]
            if len(photos) < n + 1:
                continue
            pick = [photos[j] for j in rng.choice(len(photos), size=n + 1, replace=False)]
            if len({group[p] for p in pick}) < len(pick):
                continue
            e = np.stack([emb.all_emb[p][0] for p in pick])
            dist.append(float(np.linalg.norm(e[0] - combine(e[1:]))))
        limits[str(n)] = round(float(np.quantile(dist, OUTLIER_QUANTILE)), 4)
    return limits


def calibrate(emb, fold7_pairs, fold7_same, wild_pairs, wild_same, *, lfw: Path = D.LFW, wild: Path = D.WILD,
              threshold_1: float) -> tuple[dict, dict]:
    """config.json's "anchor_sets" (K = 2..5: threshold and judge of the shipped way; the outlier limits) and
    the figures of every way and K (metrics.json "anchor_sets").

    `emb` is a `training.evaluate.WildEmbedder` that answers any photo path (LFW or wild) through the API.
    """
    ident, group = identities(lfw, wild)
    pairs = list(fold7_pairs) + list(wild_pairs)
    same = np.concatenate([np.asarray(fold7_same, bool), np.asarray(wild_same, bool)])
    is_wild = np.array([False] * len(fold7_pairs) + [True] * len(wild_pairs))
    config: dict = {"combine": SHIPPED}
    figures: dict = {"draws": DRAWS, "methods": {}, "shipped": SHIPPED, "one_photo_threshold": threshold_1}
    for k in range(2, MAX_ANCHORS + 1):
        rows = [draw_rows(k, draw, pairs, same, is_wild, emb, ident, group) for draw in range(DRAWS)]
        for m in METHODS:
            figures["methods"].setdefault(m, {})[str(k)] = method_figures(rows, m)
        thr = figures["methods"][SHIPPED][str(k)]["threshold"]
        judge, jf = fit_k(rows, thr)
        config[str(k)] = {"threshold": thr, "judge": judge.to_dict()}
        figures["methods"][SHIPPED][str(k)].update(jf)
        log.info("K=%d: %s threshold %.4f, wild %.4f (cross-validated %.4f)", k, SHIPPED, thr,
                 figures["methods"][SHIPPED][str(k)]["wild_accuracy"],
                 figures["methods"][SHIPPED][str(k)]["wild_accuracy_cv"])
    config["outlier_distance"] = outlier_limits(emb, ident, group)
    return config, figures


def format_figures(f: dict, one_photo: dict | None = None) -> str:
    """The rows of docs/accuracy.md: accuracy against the number of anchor photos, per way of combining."""
    lines = ["| way of combining | K | threshold | wild pairs | wild: at the calibrated threshold / cross-validated | "
             "LFW fold 7 pairs | LFW fold 7: calibrated / cross-validated |", "|---|---|---|---|---|---|---|"]
    if one_photo:
        lines.append(f"| (one photo) | 1 | {one_photo['threshold']:.4f} | 600 | {one_photo['wild']:.4f} / - | 600 | "
                     f"{one_photo['lfw_fold7']:.4f} / - |")
    for m, per_k in f["methods"].items():
        for k, r in per_k.items():
            star = " (shipped)" if m == f["shipped"] else ""
            lfw = ("-" if r["lfw_fold7_accuracy"] is None else
                   f"{r['lfw_fold7_accuracy']:.4f} / {r['lfw_fold7_accuracy_cv']:.4f}")
            lines.append(f"| {m}{star} | {k} | {r['threshold']:.4f} | {r['wild_pairs']} | {r['wild_accuracy']:.4f} / "
                         f"{r['wild_accuracy_cv']:.4f} | {r['lfw_fold7_pairs']} | {lfw} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.anchors", description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="weights", help="weights folder (default: the shipped weights/)")
    args = p.parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from facesim.model import Encoder

    from .evaluate import WildEmbedder

    encoder = Encoder.load(args.weights)
    emb = WildEmbedder(encoder)
    split = D.protocol_split(D.LFW)
    f7 = [(str(D.LFW / p.a), str(D.LFW / p.b)) for p in split.validation_pairs]
    wp, ws = D.wild_pairs(D.WILD)
    config, figures = calibrate(emb, f7, [p.same for p in split.validation_pairs], wp, ws,
                                threshold_1=float(encoder.config.threshold))
    print(format_figures(figures))
    print("outlier limits:", config["outlier_distance"])
    for k in range(2, MAX_ANCHORS + 1):
        r = figures["methods"][SHIPPED][str(k)]
        print(f"K={k}: confident wild {r['wild_confident_share']:.3f} / {r['wild_confident_accuracy']:.4f}, "
              f"ECE {r['wild_ece']:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
