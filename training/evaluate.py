"""Evaluate a weights folder under PROTOCOL.md v1: `python -m training.evaluate [--weights weights]`.

Runs the whole app pipeline (load, detect, align, embed) on the raw LFW images, prints every protocol
figure, writes `metrics.json` and `roc.png`, and writes the validation-calibrated threshold and
probability calibration into `config.json`.
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
    p.add_argument("--limit-test", type=int, default=None,
                   help="score only the first N test pairs of each kind (quick checks; not a protocol figure)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    if not logging.getLogger().handlers:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    metrics = evaluate(Path(args.weights), Path(args.lfw), Path(args.att), limit_test=args.limit_test)
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

    def __call__(self, path: str) -> np.ndarray:
        if path not in self.cache:
            t0 = time.perf_counter()
            crop, fell_back = D.extract_one(path)  # the app's pipeline, with the protocol's fallback
            t1 = time.perf_counter()
            self.cache[path] = self.encoder.embed_crops(crop[None])[0]
            t2 = time.perf_counter()
            self.fallbacks += fell_back
            self.extract_ms.append((t1 - t0) * 1000)
            self.embed_ms.append((t2 - t1) * 1000)
        return self.cache[path]

    def distances(self, pairs: list[tuple[str, str]]) -> np.ndarray:
        return np.array([float(np.linalg.norm(self(a) - self(b))) for a, b in pairs])


def evaluate(folder: Path, lfw: Path, att: Path, *, limit_test: int | None = None) -> dict:
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
    threshold, val_acc = best_threshold(val_d, val_same)
    calibration = fit_calibration(val_d, val_same)

    test_pairs = list(split.test_pairs)
    if limit_test:
        test_pairs = [p for p in test_pairs if p.same][:limit_test] + [p for p in test_pairs if not p.same][:limit_test]
    log.info("test: %d pairs", len(test_pairs))
    test_d = emb.distances([(str(lfw / p.a), str(lfw / p.b)) for p in test_pairs])
    same = np.array([p.same for p in test_pairs])
    correct = int(np.sum((test_d <= threshold) == same))
    acc = correct / len(same)
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

    weights_file = folder / encoder.config.weights_file
    metrics = {
        "protocol": "PROTOCOL.md v1 (LFW deep-funneled; test = pairs.txt folds 8-9, validation = fold 7)",
        "test_pairs": len(same),
        "pair_accuracy": acc,
        "pair_accuracy_ci95": [lo, hi],
        "threshold": threshold,
        "validation_accuracy": val_acc,
        "roc_auc": roc_auc(test_d, same),
        "tar_at_far_1pct": tar,
        "triplet_accuracy": triplet_acc,
        "triplets": n_trip,
        **att_fig,
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
    return metrics


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
        f"LFW test pair accuracy: {m['pair_accuracy']:.4f} (95% CI {lo:.4f}-{hi:.4f}, {m['test_pairs']} pairs) "
        f"at threshold {m['threshold']:.4f} (validation accuracy {m['validation_accuracy']:.4f})",
        f"ROC AUC: {m['roc_auc']:.4f}   TAR@FAR=1%: {m['tar_at_far_1pct']:.4f}",
    ]
    if m.get("triplet_accuracy") is not None:
        lines.append(f"triplet accuracy: {m['triplet_accuracy']:.4f} ({m['triplets']} triplets)")
    if "att_accuracy" in m:
        lines.append(f"AT&T: accuracy {m['att_accuracy']:.4f} at the LFW threshold, ROC AUC {m['att_auc']:.4f}")
    lines.append(f"fallbacks: {m['fallbacks']} of {m['images']} images; median ms per image: "
                 f"extraction {m['extract_ms_median']:.1f}, embedding {m['embed_ms_median']:.1f}")
    return "\n".join(lines)


def write_results(folder: Path, metrics: dict) -> None:
    """metrics.json, roc.png, and the threshold/calibration in config.json; then the model card."""
    from facesim.model import Calibration, ModelConfig

    from .card import write_card

    roc = metrics.pop("_roc")
    config = ModelConfig.read(folder)
    info = dict(config.info)
    info["weights_sha256"] = metrics["weights_sha256"]
    config = config.with_(threshold=metrics["threshold"], calibration=Calibration(**metrics["calibration"]),
                          info=info)
    config.write(folder)
    _write_json(folder / "metrics.json", metrics)
    plot_roc(roc, metrics, folder / "roc.png")
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
                                  info={**info, "weights_sha256": sha})
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
