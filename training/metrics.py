"""Pair-verification figures: best threshold, accuracy with Wilson interval, ROC, TAR@FAR, calibration."""

from __future__ import annotations

import math

import numpy as np

from facesim.model import Calibration


def best_threshold(dist: np.ndarray, same: np.ndarray) -> tuple[float, float]:
    """The distance threshold maximising pair accuracy (match when d <= threshold), and that accuracy."""
    dist, same = np.asarray(dist, np.float64), np.asarray(same, bool)
    order = np.argsort(dist, kind="stable")
    d, s = dist[order], same[order]
    # Threshold just after position k: the first k+1 pairs are called "same".
    tp = np.cumsum(s)
    tn = (~s).sum() - np.cumsum(~s)
    acc = (tp + tn) / len(d)
    # Calling nothing "same" is a candidate too.
    k = int(np.argmax(acc))
    if (~s).sum() / len(d) > acc[k]:
        return float(d[0] - 1e-6), float((~s).sum() / len(d))
    thr = (d[k] + d[k + 1]) / 2 if k + 1 < len(d) else d[k] + 1e-6
    return float(thr), float(acc[k])


def accuracy_at(dist, same, threshold: float) -> float:
    return float(np.mean((np.asarray(dist) <= threshold) == np.asarray(same, bool)))


def wilson_interval(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion."""
    if n == 0:
        return (0.0, 1.0)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (max(0.0, centre - half), min(1.0, centre + half))


def roc_curve(dist, same) -> tuple[np.ndarray, np.ndarray]:
    """(false accept rate, true accept rate) as the threshold sweeps over all distances."""
    dist, same = np.asarray(dist, np.float64), np.asarray(same, bool)
    order = np.argsort(dist, kind="stable")
    s = same[order]
    tar = np.concatenate([[0.0], np.cumsum(s) / max(1, s.sum())])
    far = np.concatenate([[0.0], np.cumsum(~s) / max(1, (~s).sum())])
    return far, tar


def roc_auc(dist, same) -> float:
    """Probability that a random same pair is closer than a random different pair (ties count half)."""
    dist, same = np.asarray(dist, np.float64), np.asarray(same, bool)
    pos, neg = dist[same], dist[~same]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    ranks = _rankdata(np.concatenate([-pos, -neg]))
    return float((ranks[: len(pos)].sum() - len(pos) * (len(pos) + 1) / 2) / (len(pos) * len(neg)))


def _rankdata(x: np.ndarray) -> np.ndarray:
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), np.float64)
    xs = x[order]
    i = 0
    while i < len(x):
        j = i
        while j + 1 < len(x) and xs[j + 1] == xs[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def tar_at_far(dist, same, far: float = 0.01) -> tuple[float, float]:
    """True accept rate when the threshold lets at most `far` of different pairs through; and that threshold."""
    dist, same = np.asarray(dist, np.float64), np.asarray(same, bool)
    neg = np.sort(dist[~same])
    k = int(math.floor(far * len(neg)))  # how many negatives may be accepted
    thr = neg[k] - 1e-9 if k < len(neg) else np.inf
    return float(np.mean(dist[same] <= thr)), float(thr)


def fit_calibration(dist, same, *, iters: int = 200) -> Calibration:
    """Logistic regression of "same person" on distance (Newton's method), as a Calibration."""
    d = np.asarray(dist, np.float64)
    y = np.asarray(same, np.float64)
    x = np.stack([np.ones_like(d), d], axis=1)
    w = np.array([0.0, 0.0])
    lam = 1e-3
    for _ in range(iters):
        p = 1 / (1 + np.exp(-np.clip(x @ w, -50, 50)))
        g = x.T @ (p - y) + lam * w
        h = (x * (p * (1 - p))[:, None]).T @ x + lam * np.eye(2)
        step = np.linalg.solve(h, g)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    # p = sigmoid(w0 + w1 d) = 1 / (1 + exp(slope (d - center))) with slope = -w1, center = -w0 / w1.
    slope = float(-w[1])
    if slope <= 0:
        raise ValueError("distances do not separate same from different pairs; cannot calibrate")
    return Calibration(slope=slope, center=float(-w[0] / w[1]))
