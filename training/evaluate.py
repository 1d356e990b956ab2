"""Evaluate a weights folder under PROTOCOL.md v2: `python -m training.evaluate [--weights weights]`.

Runs the whole app pipeline (load, detect, align, embed) on the raw LFW images (part A) and on the
in-the-wild validation photos (part B), prints every protocol figure, writes `metrics.json` and
`roc.png`, and writes the threshold and probability calibration, chosen on validation only (LFW fold 7
and the wild pairs together), into `config.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np

from . import data as D
from .metrics import (
    accuracy_at,
    best_threshold,
    fit_calibration,
    roc_auc,
    roc_curve,
    tar_at_far,
    wilson_interval,
)

log = logging.getLogger("training.evaluate")

TRIPLETS = 2000
ATT_PAIRS = 1000
SEED = 0


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="python -m training.evaluate", description=__doc__.split("\n")[0])
    p.add_argument("--weights", default="weights", help="weights folder (default: the shipped weights/)")
    p.add_argument("--lfw", default=str(D.LFW))
    p.add_argument("--att", default=str(D.ATT))
    p.add_argument("--wild", default=str(D.WILD), help="PROTOCOL.md v2 part B validation photos")
    p.add_argument("--limit-test", type=int, default=None,
                   help="score only the first N test pairs of each kind (quick checks; not a protocol figure)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    metrics = evaluate(Path(args.weights), Path(args.lfw), Path(args.att), limit_test=args.limit_test,
                       wild=Path(args.wild))
    print(format_metrics(metrics))
    if args.limit_test is None:
        write_results(Path(args.weights), metrics)
    return 0


class PipelineEmbedder:
    """Embeds raw image files exactly as the app does, remembering results and per-image costs."""

    def __init__(self, encoder):
        self.encoder = encoder
        self.cache: dict[str, np.ndarray] = {}
        self.extract_ms: list[float] = []
        self.embed_ms: list[float] = []
        self.fallbacks = 0
        self.fell_back: set[str] = set()

    def __call__(self, path: str) -> np.ndarray:
        if path not in self.cache:
            t0 = time.perf_counter()
            crop, fell_back = D.extract_one(path, self.encoder.config.chip)  # the app's pipeline + the fallback
            t1 = time.perf_counter()
            self.cache[path] = self.encoder.embed_crops(crop[None])[0]
            t2 = time.perf_counter()
            self.fallbacks += fell_back
            if fell_back:
                self.fell_back.add(path)
            self.extract_ms.append((t1 - t0) * 1000)
            self.embed_ms.append((t2 - t1) * 1000)
        return self.cache[path]

    def distances(self, pairs: list[tuple[str, str]], desc: str = "pairs") -> np.ndarray:
        from .progress import progress

        return np.array([float(np.linalg.norm(self(a) - self(b))) for a, b in progress(pairs, total=len(pairs),
                                                                                         desc=desc)])


class WildEmbedder:
    """PROTOCOL.md B: each photo through the public API (`extract_faces`, best face, `embed`), no fallback.

    With `mirrored`, it also keeps the embeddings of the mirrored chips (a signal the uncertainty rows try).
    """

    def __init__(self, encoder, *, mirrored: bool = False):
        self.encoder = encoder
        self.faces: dict[str, object] = {}  # the clearest face of each photo, None when it has none
        self.every_face: dict[str, tuple] = {}  # every face of a photo, clearest first (empty when none)
        self.all_emb: dict[str, np.ndarray] = {}  # every face of a photo, clearest first
        self.mirrored = {} if mirrored else None

    def __call__(self, path: str):
        if path not in self.faces:
            faces = D.photo_faces(path, self.encoder.config.chip)
            self.faces[path] = faces[0] if faces else None
            self.every_face[path] = faces
            if faces:
                crops = np.stack([f.crop for f in faces])
                self.all_emb[path] = self.encoder.embed_crops(crops)
                if self.mirrored is not None:
                    self.mirrored[path] = self.encoder.embed_crops(np.ascontiguousarray(crops[:, :, ::-1]))
        return self.all_emb[path][0] if path in self.all_emb else None

    def pair_set(self, name: str, pairs, same, threshold: float):
        """The pairs answered as the public API answers them (`training.uncertainty.PairSet`)."""
        from .progress import progress
        from .uncertainty import pair_set

        for a, b in progress(pairs, total=len(pairs), desc=f"{name} faces"):
            self(a), self(b)
        return pair_set(name, pairs, same, self.every_face, self.all_emb, threshold, self.mirrored)


    def closest_distances(self, pairs) -> np.ndarray:
        """As the app answers a candidate: the first photo's clearest face against every face of the second,
        the closest kept; NaN where a photo has no face."""
        out = []
        for a, b in pairs:
            ea, _ = self(a), self(b)
            out.append(np.nan if ea is None or b not in self.all_emb else
                       float(np.linalg.norm(self.all_emb[b] - ea[None], axis=1).min()))
        return np.array(out)

    def distances(self, pairs, desc: str = "wild pairs") -> np.ndarray:
        """Distances of pairs; NaN where a photo has no face."""
        from .progress import progress

        out = []
        for a, b in progress(pairs, total=len(pairs), desc=desc):
            ea, eb = self(a), self(b)
            out.append(np.nan if ea is None or eb is None else float(np.linalg.norm(ea - eb)))
        return np.array(out)


def api_pair_sets(encoder, *, mirrored: bool = False, lfw: Path = D.LFW, wild: Path = D.WILD,
                  wild_emb: WildEmbedder | None = None, threshold: float | None = None):
    """LFW fold 7, the wild pairs and LFW test, each answered as the public API answers it."""
    split = D.protocol_split(lfw)
    threshold = float(encoder.config.threshold if threshold is None else threshold)
    emb = wild_emb or WildEmbedder(encoder, mirrored=mirrored)  # one embedder answers LFW's photos and the wild set's

    def lfw_set(name, prs):
        return emb.pair_set(name, [(str(lfw / p.a), str(lfw / p.b)) for p in prs], [p.same for p in prs], threshold)

    wp, ws = D.wild_pairs(wild)
    return (lfw_set("LFW fold 7", split.validation_pairs), emb.pair_set("wild", wp, ws, threshold),
            lfw_set("LFW test", split.test_pairs))


def choose_threshold(lfw_d: np.ndarray, lfw_same: np.ndarray, wild_d: np.ndarray, wild_same: np.ndarray):
    """Threshold and calibration from LFW fold 7 and the wild pairs together (both are validation sets).

    Both together, because the app must serve aligned press photos and phone snaps alike: a threshold from
    either alone is biased towards its own kind of photo. Wild pairs without a face are left out here
    (they are wrong at any threshold).
    """
    ok = ~np.isnan(wild_d)
    d = np.concatenate([lfw_d, wild_d[ok]])
    same = np.concatenate([lfw_same, wild_same[ok]])
    threshold, _ = best_threshold(d, same)
    return threshold, fit_calibration(d, same)


def wild_figures(emb: WildEmbedder, root: Path, threshold: float) -> dict:
    """Every PROTOCOL.md B figure at the shipped threshold, plus the quality table behind the rules."""
    pairs, same = D.wild_pairs(root)
    photos = D.wild_photos(root)
    from .progress import progress

    for p in progress(photos, total=len(photos), desc="wild photos"):
        emb(p)
    no_face = sum(emb.faces[p] is None for p in photos)
    d = emb.distances(pairs)
    found = ~np.isnan(d)
    match = np.where(found, d <= threshold, False)  # no face: can never be called a match
    correct = match == same
    n = len(same)
    lo, hi = wilson_interval(int(correct.sum()), n)
    trip = D.wild_triplets(root)
    d_ap = emb.distances([(a, p) for a, p, _ in trip])
    d_an = emb.distances([(a, n_) for a, _, n_ in trip])
    trip_ok = np.where(np.isnan(d_ap) | np.isnan(d_an), False, d_ap < d_an)
    # Selective accuracy (B.4) comes from the uncertainty model (`judge_figures`); here, the guard rails alone.
    good = np.array([found[i] and emb.faces[a].quality.ok and emb.faces[b].quality.ok
                     for i, (a, b) in enumerate(pairs)])
    # The app's rule for a candidate photo: its face closest to the anchor's (a group photo works). Where
    # the second photo holds one face this is the protocol's figure; the difference is what the rule costs.
    dc = emb.closest_distances(pairs)
    match_c = np.where(~np.isnan(dc), dc <= threshold, False)
    multi = np.array([b in emb.all_emb and len(emb.all_emb[b]) > 1 for _, b in pairs])
    return {
        "wild_pairs": n,
        "wild_pair_accuracy": float(correct.mean()),
        "wild_pair_accuracy_ci95": [lo, hi],
        "wild_false_accept_rate": float(np.mean(match[~same])),
        "wild_false_reject_rate": float(np.mean(~match[same])),
        "wild_no_face_photos": int(no_face),
        "wild_photos": len(photos),
        "wild_pairs_without_face": int((~found).sum()),
        "wild_roc_auc": roc_auc(d[found], same[found]),
        "wild_triplet_accuracy": float(trip_ok.mean()),
        "wild_triplets": len(trip),
        "wild_quality_ok_share": float(good.mean()),
        "wild_quality_ok_accuracy": float(correct[good].mean()) if good.any() else None,
        "wild_quality_table": quality_table(emb, pairs, correct),
        "wild_closest_face_accuracy": float(np.mean(match_c == same)),
        "wild_closest_face_false_accept_rate": float(np.mean(match_c[~same])),
        "wild_closest_face_false_reject_rate": float(np.mean(~match_c[same])),
        "wild_pairs_second_photo_several_faces": int(multi.sum()),
    }


def quality_table(emb: WildEmbedder, pairs, correct: np.ndarray) -> dict:
    """Accuracy of the wild pairs by the worse face's value of each quality figure (the rules' evidence)."""
    from facesim import quality as Q

    rows = {}
    figures = {"eye_distance": (Q.MIN_EYE_DISTANCE, True), "sharpness": (Q.MIN_SHARPNESS, True),
               "score": (Q.MIN_SCORE, True), "abs_yaw": (Q.MAX_YAW, False), "outside": (Q.MAX_OUTSIDE, False)}
    for name, (limit, low_is_bad) in figures.items():
        vals = []
        for a, b in pairs:
            fa, fb = emb.faces[a], emb.faces[b]
            if fa is None or fb is None:
                vals.append(np.nan)
                continue
            va, vb = (abs(f.quality.yaw) if name == "abs_yaw" else getattr(f.quality, name) for f in (fa, fb))
            vals.append(min(va, vb) if low_is_bad else max(va, vb))
        vals = np.array(vals)
        ok = ~np.isnan(vals)
        bad = ok & ((vals < limit) if low_is_bad else (vals > limit))
        rows[name] = {"rule": f"{'<' if low_is_bad else '>'} {limit}", "flagged_pairs": int(bad.sum()),
                      "accuracy_flagged": float(correct[bad].mean()) if bad.any() else None,
                      "accuracy_rest": float(correct[ok & ~bad].mean()) if (ok & ~bad).any() else None,
                      "quartiles": [float(q) for q in np.nanpercentile(vals, [25, 50, 75])] if ok.any() else None}
    return rows


def evaluate(folder: Path, lfw: Path, att: Path, *, limit_test: int | None = None,
             wild: Path | None = D.WILD) -> dict:
    from facesim.model import Encoder, file_sha256

    t_start = time.time()
    encoder = Encoder.load(folder)
    split = D.protocol_split(lfw)
    emb = PipelineEmbedder(encoder)
    # Embed once to warm up the graph so the first image's timing is not the trace.
    encoder.embed_crops(np.zeros((1, encoder.config.crop_size, encoder.config.crop_size, 3), np.uint8))

    val = [(str(lfw / p.a), str(lfw / p.b)) for p in split.validation_pairs]
    val_same = np.array([p.same for p in split.validation_pairs])
    log.info("validation: %d pairs", len(val))
    val_d = emb.distances(val)
    _, val_acc = best_threshold(val_d, val_same)
    wild_emb = WildEmbedder(encoder)
    if wild is not None and wild.is_dir():
        wild_pairs, wild_same = D.wild_pairs(wild)
        log.info("wild validation: %d pairs", len(wild_pairs))
        wild_d = wild_emb.distances(wild_pairs)
        threshold, calibration = choose_threshold(val_d, val_same, wild_d, wild_same)
        threshold_from = "LFW fold 7 + wild validation pairs"
    else:
        threshold, _ = best_threshold(val_d, val_same)
        calibration = fit_calibration(val_d, val_same)
        threshold_from = "LFW fold 7"

    test_pairs = list(split.test_pairs)
    if limit_test:
        test_pairs = [p for p in test_pairs if p.same][:limit_test] + [p for p in test_pairs if not p.same][:limit_test]
    log.info("test: %d pairs", len(test_pairs))
    test_d = emb.distances([(str(lfw / p.a), str(lfw / p.b)) for p in test_pairs])
    same = np.array([p.same for p in test_pairs])
    correct = int(np.sum((test_d <= threshold) == same))
    acc = correct / len(same)
    no_face = np.array([str(lfw / p.a) in emb.fell_back or str(lfw / p.b) in emb.fell_back for p in test_pairs])
    strict = float(np.mean(((test_d <= threshold) == same) & ~no_face))
    lo, hi = wilson_interval(correct, len(same))
    tar, tar_thr = tar_at_far(test_d, same, 0.01)

    triplet_acc, n_trip = None, 0
    if not limit_test:
        trip = test_triplets(lfw, split.test_people)
        n_trip = len(trip)
        log.info("triplets: %d", n_trip)
        d_ap = emb.distances([(a, p) for a, p, _ in trip])
        d_an = emb.distances([(a, n) for a, _, n in trip])
        triplet_acc = float(np.mean(d_ap < d_an))

    att_fig = {}
    if att.is_dir() and not limit_test:
        att_pairs, att_same = att_pair_list(att)
        log.info("AT&T: %d pairs", len(att_pairs))
        att_d = emb.distances(att_pairs)
        att_fig = {"att_accuracy": accuracy_at(att_d, att_same, threshold), "att_auc": roc_auc(att_d, att_same),
                   "att_pairs": len(att_pairs)}

    wild_fig, judge_fig, judge = {}, {}, None
    if wild is not None and wild.is_dir() and not limit_test:
        wild_fig = wild_figures(wild_emb, wild, threshold)
        judge, judge_fig = judge_figures(encoder, wild_emb, threshold, calibration, lfw=lfw, wild=wild)

    weights_file = folder / encoder.config.weights_file
    metrics = {
        "protocol": "PROTOCOL.md v2 (A: LFW deep-funneled, test = pairs.txt folds 8-9; B: celeba-wild-val)",
        "test_pairs": len(same),
        "pair_accuracy": acc,
        "pair_accuracy_ci95": [lo, hi],
        "strict_pair_accuracy": strict,
        "test_pairs_without_face": int(no_face.sum()),
        "threshold": threshold,
        "threshold_from": threshold_from,
        "validation_accuracy": val_acc,
        "roc_auc": roc_auc(test_d, same),
        "tar_at_far_1pct": tar,
        "triplet_accuracy": triplet_acc,
        "triplets": n_trip,
        **att_fig,
        **wild_fig,
        **judge_fig,
        "fallbacks": emb.fallbacks,
        "images": len(emb.cache),
        "extract_ms_median": float(np.median(emb.extract_ms)),
        "embed_ms_median": float(np.median(emb.embed_ms)),
        "weights_sha256": file_sha256(weights_file),
        "weights_bytes": weights_file.stat().st_size,
        "calibration": {"slope": calibration.slope, "center": calibration.center},
        "evaluated": time.strftime("%Y-%m-%d"),
        "eval_seconds": round(time.time() - t_start, 1),
        "_roc": [a.tolist() for a in roc_curve(test_d, same)],
    }
    if judge is not None:
        metrics["judge"] = judge.judge.to_dict()
        metrics["_judge"] = judge
    return metrics


def judge_figures(encoder, wild_emb: WildEmbedder, threshold: float, calibration, *, lfw: Path, wild: Path):
    """The probability and the uncertain rule fitted on validation (`training.uncertainty`), and their figures:
    coverage and accuracy of the confident answers and the calibration error, per set."""
    from .uncertainty import OLD_RULES, fit_judge

    fold7, wild_set, test = api_pair_sets(encoder, lfw=lfw, wild=wild, wild_emb=wild_emb, threshold=threshold)
    fitted = fit_judge(fold7, wild_set, test, threshold)
    # The rules shipped before: the old quality flags plus the band where the distance-only probability lies
    # within 0.25-0.75, for the curve's reference point.
    band = float(np.log(3.0) / calibration.slope)
    old = {}
    for key, ps in (("lfw_fold7", fold7), ("wild", wild_set), ("lfw_test", test)):
        conf = ps.old_ok & (np.abs(ps.d - threshold) >= band)
        c = (ps.d <= threshold) == ps.same
        old[key] = (float(conf.mean()), float(c[conf].mean()) if conf.any() else float("nan"))
    figures = dict(fitted.figures)
    for key, (share, acc) in old.items():
        figures[f"{key}_old_rules_confident_share"], figures[f"{key}_old_rules_confident_accuracy"] = share, acc
    figures["old_rules"] = {**OLD_RULES, "band": band}
    fitted.old_points = old
    # Anchor sets: 2-5 photos of the anchor's person, calibrated per count on the same validation pairs.
    from .anchors import calibrate

    split = D.protocol_split(lfw)
    wp, ws = D.wild_pairs(wild)
    anchor_config, anchor_figures = calibrate(
        wild_emb, [(str(lfw / p.a), str(lfw / p.b)) for p in split.validation_pairs],
        [p.same for p in split.validation_pairs], wp, ws, lfw=lfw, wild=wild, threshold_1=threshold)
    anchor_figures["one_photo"] = {"threshold": threshold, "wild": figures["wild_accuracy_api"],
                                   "lfw_fold7": figures["lfw_fold7_accuracy_api"]}
    figures["anchor_sets"] = anchor_figures
    fitted.anchor_sets = anchor_config
    return fitted, figures


def test_triplets(lfw: Path, test_people) -> list[tuple[str, str, str]]:
    """PROTOCOL.md figure 3: 2,000 triplets from test people, seed 0."""
    people = D.list_people(lfw)
    names = sorted(test_people)
    multi = [n for n in names if len(people[n]) >= 2]
    rng = np.random.default_rng(SEED)
    out = []
    for _ in range(TRIPLETS):
        person = multi[rng.integers(len(multi))]
        a, p = rng.choice(len(people[person]), size=2, replace=False)
        other = person
        while other == person:
            other = names[rng.integers(len(names))]
        n = rng.integers(len(people[other]))
        out.append((str(people[person][a]), str(people[person][p]), str(people[other][n])))
    return out


def att_pair_list(att: Path) -> tuple[list[tuple[str, str]], np.ndarray]:
    """PROTOCOL.md figure 4: 1,000 same and 1,000 different AT&T pairs, seed 0."""
    people = D.list_people(att)
    names = sorted(people)
    rng = np.random.default_rng(SEED)
    pairs = []
    for _ in range(ATT_PAIRS):
        n = names[rng.integers(len(names))]
        i, j = rng.choice(len(people[n]), size=2, replace=False)
        pairs.append((str(people[n][i]), str(people[n][j])))
    for _ in range(ATT_PAIRS):
        a, b = rng.choice(len(names), size=2, replace=False)
        pa, pb = people[names[a]], people[names[b]]
        pairs.append((str(pa[rng.integers(len(pa))]), str(pb[rng.integers(len(pb))])))
    return pairs, np.array([True] * ATT_PAIRS + [False] * ATT_PAIRS)


def format_metrics(m: dict) -> str:
    lo, hi = m["pair_accuracy_ci95"]
    lines = [
        "A. LFW held-out identities",
        f"LFW test pair accuracy: {m['pair_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}, {m['test_pairs']} pairs) "
        f"at threshold {m['threshold']:.4f} (from {m.get('threshold_from', 'LFW fold 7')}; "
        f"fold 7 accuracy {m['validation_accuracy']:.4f})",
        f"strict LFW test pair accuracy (no face found = wrong): {m.get('strict_pair_accuracy', float('nan')):.4f} "
        f"({m.get('test_pairs_without_face', 0)} pairs with a photo without a face)",
        f"ROC AUC: {m['roc_auc']:.4f}   TAR@FAR=1%: {m['tar_at_far_1pct']:.4f}",
    ]
    if m.get("triplet_accuracy") is not None:
        lines.append(f"triplet accuracy: {m['triplet_accuracy']:.4f} ({m['triplets']} triplets)")
    if "att_accuracy" in m:
        lines.append(f"AT&T: accuracy {m['att_accuracy']:.4f} at the LFW threshold, ROC AUC {m['att_auc']:.4f}")
    lines.append(f"fallbacks: {m['fallbacks']} of {m['images']} images; median ms per image: "
                 f"extraction {m['extract_ms_median']:.1f}, embedding {m['embed_ms_median']:.1f}")
    if "wild_pair_accuracy" in m:
        lo, hi = m["wild_pair_accuracy_ci95"]
        lines += [
            "B. Real photos (celeba-wild-val, validation)",
            f"wild pair accuracy: {m['wild_pair_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}, {m['wild_pairs']} pairs); "
            f"false accepts {m['wild_false_accept_rate']:.3f}, false rejects {m['wild_false_reject_rate']:.3f}",
            f"photos with no face found: {m['wild_no_face_photos']} of {m['wild_photos']}",
            f"ROC AUC (pairs with both faces): {m['wild_roc_auc']:.4f}   triplet accuracy: "
            f"{m['wild_triplet_accuracy']:.4f} ({m['wild_triplets']} triplets)",
        ]
        if "wild_confident_share" in m:
            lines += format_selective(m)
        if "wild_closest_face_accuracy" in m:
            lines.append(f"the app's rule (second photo: its face closest to the first's; "
                         f"{m['wild_pairs_second_photo_several_faces']} pairs have several faces there): accuracy "
                         f"{m['wild_closest_face_accuracy']:.4f}, false accepts "
                         f"{m['wild_closest_face_false_accept_rate']:.3f}, false rejects "
                         f"{m['wild_closest_face_false_reject_rate']:.3f}")
        for name, row in m["wild_quality_table"].items():
            acc_f = "-" if row["accuracy_flagged"] is None else f"{row['accuracy_flagged']:.3f}"
            lines.append(f"  quality {name} {row['rule']}: {row['flagged_pairs']} pairs flagged, accuracy {acc_f} "
                         f"(rest {row['accuracy_rest']:.3f}; quartiles {[round(q, 1) for q in row['quartiles']]})")
    return "\n".join(lines)


def format_selective(m: dict) -> list[str]:
    """The uncertain rule's figures: coverage, selective accuracy and calibration, per set."""
    lines = [f"C. Answers to trust (the uncertain rule: doubt <= {m['judge_max_doubt']:.4f} and within the guard "
             "rails; the probability: logistic on the margin and the worse face's quality)"]
    for key, name in (("wild", "wild validation"), ("lfw_fold7", "LFW fold 7"), ("lfw_test", "LFW test")):
        if f"{key}_confident_share" not in m:
            continue
        acc = m[f"{key}_confident_accuracy"]
        lines.append(
            f"{name} ({m[f'{key}_scored']}): {m[f'{key}_confident_share']:.3f} answered confidently, accuracy on them "
            f"{acc:.4f} ({m[f'{key}_confident_errors']} wrong; all pairs {m[f'{key}_accuracy_api']:.4f}); "
            f"old rules {m[f'{key}_old_rules_confident_share']:.3f} / {m[f'{key}_old_rules_confident_accuracy']:.4f}; "
            f"ECE {m[f'{key}_ece']:.4f} (a perfectly calibrated model: {m[f'{key}_ece_if_calibrated'][0]:.4f}, "
            f"90% {m[f'{key}_ece_if_calibrated'][1]:.4f}), Brier {m[f'{key}_brier']:.4f}")
    if "lfw_fold8_ece" in m:
        lines.append(f"LFW test by fold: fold 8 ECE {m['lfw_fold8_ece']:.4f} / Brier {m['lfw_fold8_brier']:.4f}; "
                     f"fold 9 ECE {m['lfw_fold9_ece']:.4f} / Brier {m['lfw_fold9_brier']:.4f}")
    lines.append(f"ECE by cross-validation fold (fold 7 + wild, ~120 pairs each): {m['ece_by_fold']}; "
                 f"Brier: {m['brier_by_fold']}")
    if "anchor_sets" in m:
        from .anchors import format_figures

        a = m["anchor_sets"]
        lines.append(f"D. Several photos of the anchor's person ({a['shipped']} ships; {a['draws']} seeded draws of "
                     "the extra photos per pair)")
        lines.append(format_figures(a, a.get("one_photo")))
        for k, r in a["methods"][a["shipped"]].items():
            lines.append(f"K={k}: answered confidently on the wild pairs {r['wild_confident_share']:.3f}, accuracy "
                         f"on them {r['wild_confident_accuracy']:.4f} (cross-validated); ECE {r['wild_ece']:.4f}")
    return lines


def write_results(folder: Path, metrics: dict) -> None:
    """metrics.json, roc.png, and the threshold/calibration in config.json; then the model card."""
    from facesim.model import Calibration, ModelConfig

    from .card import write_card

    roc = metrics.pop("_roc")
    fitted = metrics.pop("_judge", None)
    config = ModelConfig.read(folder)
    info = dict(config.info)
    info["weights_sha256"] = metrics["weights_sha256"]
    config = config.with_(threshold=metrics["threshold"], calibration=Calibration(**metrics["calibration"]),
                          judge=metrics.get("judge"), anchor_sets=getattr(fitted, "anchor_sets", None), info=info)
    config.write(folder)
    _write_json(folder / "metrics.json", metrics)
    plot_roc(roc, metrics, folder / "roc.png")
    if fitted is not None:
        from .uncertainty import plot_curves, plot_reliability

        plot_curves(fitted, fitted.old_points, folder / "coverage.png")
        plot_reliability(fitted, folder / "reliability.png")
    write_card(folder)


def calibrate_folder(folder: Path, encoder, val_set, val_pairs, *, info: dict) -> None:
    """After training: validation threshold and calibration into config.json, validation metrics, card.

    `python -m training.evaluate` later replaces these with the full protocol figures.
    """
    from facesim.model import file_sha256

    from .card import write_card

    emb = encoder.embed_crops(val_set.crops)
    a, b, same = val_pairs
    d = np.linalg.norm(emb[a] - emb[b], axis=1)
    threshold, val_acc = best_threshold(d, same)
    try:
        calibration = fit_calibration(d, same)
    except ValueError as exc:  # an untrained or failed model: say so instead of inventing a probability
        log.warning("no probability calibration: %s", exc)
        calibration = None
    sha = file_sha256(folder / encoder.config.weights_file)
    config = encoder.config.with_(threshold=threshold, calibration=calibration,
                                  info={**encoder.config.info, **info, "weights_sha256": sha})
    config.write(folder)
    _write_json(folder / "metrics.json", {
        "protocol": "validation only (run python -m training.evaluate for the test figures)",
        "validation_accuracy": val_acc, "threshold": threshold, "validation_auc": roc_auc(d, same),
        "weights_sha256": sha, "evaluated": time.strftime("%Y-%m-%d"),
    })
    write_card(folder)


def _write_json(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def plot_roc(roc, metrics: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    far, tar = roc
    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot(far, tar, label=f"LFW test, AUC {metrics['roc_auc']:.3f}")
    ax.plot([0, 1], [0, 1], ":", color="grey")
    ax.set_xlabel("false accept rate")
    ax.set_ylabel("true accept rate")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
