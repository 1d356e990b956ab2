"""Uncertainty: a compared pair's distance and faces -> a calibrated probability, whether to trust the answer,
why not, and what would help.

The verdict itself stays "distance <= threshold". What this module adds is learned on validation pairs by
`python -m training.evaluate` (`training.uncertainty`) and stored in `config.json` under "judge": a logistic
model of "same person" on the distance's margin to the threshold and the worse face's quality (size, head
turn, detector score, sharpness, tilt). Its probability is the one shown; the chance that the verdict is
wrong follows from it (the probability itself for "no match", one minus it for "match"), and an answer is
"uncertain" when that chance exceeds the stored `max_doubt`. Faces outside what validation covered (the
quality module's guard rails) and a candidate photo in which two faces both look like the anchor are
uncertain whatever the model says.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .quality import Quality

__all__ = ["Judge", "Judgement", "FEATURES", "features", "likelihood", "advice_for", "fallback_judge"]

#: The model's inputs, in order: what each pair already has (no extra network call).
FEATURES = ("margin", "eye_distance", "yaw", "score", "sharpness", "roll")


def features(distance: float, threshold: float, qualities: Sequence[Quality]) -> np.ndarray:
    """The model's inputs for one pair: the margin and the worse face's figures, centred on a typical face.

    Args:
        distance: the pair's distance; threshold: the same-person threshold it is judged against.
        qualities: the quality records of the faces compared (the anchor's and the candidate's).

    Returns:
        float64 array (len(FEATURES),): margin d - threshold; log(smaller eye distance / 40 px); larger
        |yaw| / 45 degrees; (lower detector score - 0.8) * 10; log(lower sharpness / 0.15) (floored at 0.01);
        larger |roll| / 10 degrees (at most 45 degrees).
    """
    eye = min(q.eye_distance for q in qualities)
    return np.array([
        distance - threshold,
        math.log(max(eye, 1.0) / 40.0),
        max(abs(q.yaw) for q in qualities) / 45.0,
        (min(q.score for q in qualities) - 0.8) * 10.0,
        math.log(max(min(q.sharpness for q in qualities), 0.01) / 0.15),
        min(max(abs(q.roll) for q in qualities), 45.0) / 10.0,
    ])


#: Which side of a typical face (feature 0) is the faulty one: smaller, lower, blurrier; more turned, tilted.
_FAULTY_BELOW = {"eye_distance": True, "yaw": False, "score": True, "sharpness": True, "roll": False}
#: Why a figure can make an answer doubtful, and what would help, per feature (who: "the anchor", ...).
_WORDS = {
    "eye_distance": ("{who}: face small ({value:.0f} px between the eyes)",
                     "a larger photo of {person} (taken closer, or at a higher resolution)"),
    "yaw": ("{who}: head turned ({value:.0f} degrees)", "a photo of {person} facing the camera"),
    "score": ("{who}: face unclear (detector score {value:.2f})",
              "a photo in which {person}'s face is well lit and not covered"),
    "sharpness": ("{who}: face blurred", "a sharper photo of {person} (in focus, not enlarged from a small one)"),
    "roll": ("{who}: head tilted ({value:.0f} degrees)", "a photo of {person} with the head upright, facing the camera"),
}
#: Quality guard-rail reasons (`Quality.reasons`) -> what would help.
_GUARD_ADVICE = {
    "face too small": _WORDS["eye_distance"][1],
    "blurred": _WORDS["sharpness"][1],
    "face unclear": _WORDS["score"][1],
    "face cut off at the edge": "a photo in which {person}'s whole face is inside the frame",
}


def advice_for(reason: str, person: str) -> str:
    """What would help against a guard-rail reason of `Quality.reasons`, for `person` ("the anchor's person")."""
    return _GUARD_ADVICE.get(reason, "another clear, frontal photo of {person}").format(person=person)


def likelihood(probability: float) -> str:
    """The probability in words: "very likely the same person", ..., "can't tell", ..., "very likely not"."""
    if not probability == probability:  # NaN: an uncalibrated model
        return "no probability (uncalibrated model)"
    if probability >= 0.95:
        return "very likely the same person"
    if probability >= 0.7:
        return "probably the same person"
    if probability > 0.3:
        return "can't tell"
    if probability > 0.05:
        return "probably not the same person"
    return "very likely not the same person"


@dataclass(frozen=True)
class Judgement:
    """How far one answer can be trusted.

    Attributes:
        probability: calibrated probability that the two faces are the same person.
        doubt: probability that the verdict (distance <= threshold) is wrong.
        confident: False when the answer must be given as "uncertain".
        reasons: why not confident, in words a person reads ("candidate A: head turned (62 degrees)").
        advice: what would help, one line per remedy ("a photo of the candidate A person facing the camera").
    """

    probability: float
    doubt: float
    confident: bool
    reasons: tuple[str, ...] = ()
    advice: tuple[str, ...] = ()

    @property
    def words(self) -> str:
        return likelihood(self.probability)


@dataclass(frozen=True)
class Judge:
    """The stored model (config.json "judge"): logistic regression of "same person" on `FEATURES`.

    Attributes:
        threshold: the calibrated threshold the margin is measured from (a threshold moved by the user changes
            the verdict, not the probability).
        intercept, coef: p(same) = 1 / (1 + exp(-(intercept + coef . features))).
        max_doubt: an answer whose chance of being wrong exceeds this is "uncertain".
    """

    threshold: float
    intercept: float
    coef: tuple[float, ...]
    max_doubt: float
    features: tuple[str, ...] = FEATURES

    @classmethod
    def from_dict(cls, data: dict) -> Judge:
        feats = tuple(data.get("features", FEATURES))
        if feats != FEATURES or len(data["coef"]) != len(FEATURES):
            raise ValueError(f"judge: features {list(feats)} with {len(data['coef'])} coefficients; this FaceSim "
                             f"computes {list(FEATURES)}")
        return cls(threshold=float(data["threshold"]), intercept=float(data["intercept"]),
                   coef=tuple(float(c) for c in data["coef"]), max_doubt=float(data["max_doubt"]), features=feats)

    def to_dict(self) -> dict:
        return {"features": list(self.features), "threshold": self.threshold, "intercept": self.intercept,
                "coef": list(self.coef), "max_doubt": self.max_doubt}

    def probability(self, x: np.ndarray) -> np.ndarray | float:
        """p(same) for feature rows `x` ((N, F) or (F,))."""
        z = self.intercept + np.asarray(x, np.float64) @ np.asarray(self.coef)
        p = 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))
        return float(p) if np.ndim(p) == 0 else p

    def judge(self, distance: float, named: Sequence[tuple[str, str, Quality]], *, threshold: float | None = None,
              crowded: str | None = None) -> Judgement:
        """Judge one answer.

        Args:
            distance: the pair's distance.
            named: (who, person, quality) of each face compared, e.g. ("candidate A", "the candidate A person",
                quality): `who` names the photo in reasons, `person` names whom the advice asks for.
            threshold: the threshold the verdict used (default: the calibrated one).
            crowded: set to the photo's name when another face of a candidate photo is also within the
                threshold of the anchor (two faces there look like the anchor's person).
        """
        threshold = self.threshold if threshold is None else threshold
        x = features(distance, self.threshold, [q for _, _, q in named])
        p = self.probability(x)
        is_match = distance <= threshold
        doubt = 1.0 - p if is_match else p
        reasons, advice = [], []
        for who, person, q in named:  # guard rails: outside what validation covered
            for r in q.reasons:
                reasons.append(f"{who}: {r}")
                advice.append(advice_for(r, person))
        if crowded:
            reasons.append(f"{crowded}: two faces in the photo look like the anchor's person")
            advice.append(f"a photo with {named[-1][1]}'s face alone")
        if doubt > self.max_doubt:
            # Which faults (a figure on its faulty side of a typical face) pushed the answer towards being wrong?
            push = np.asarray(self.coef) * x * (1.0 if is_match else -1.0)  # < 0: towards the wrong side
            for k in np.argsort(push):
                name = self.features[k]
                if name == "margin" or push[k] > -0.5 or (x[k] < 0) != _FAULTY_BELOW[name]:
                    continue
                who, person, q, value = _worst(name, named)
                reasons.append(_WORDS[name][0].format(who=who, value=value))
                advice.append(_WORDS[name][1].format(person=person))
            reasons.append(f"distance {distance:.3f} is close to the threshold {threshold:.3f}")
            if not advice:
                advice.append("another sharp, frontal photo of each person"
                              if len(named) == 2 else "more photos of the anchor's person")
        reasons, advice = tuple(dict.fromkeys(reasons)), tuple(dict.fromkeys(advice))
        return Judgement(probability=p, doubt=doubt, confident=not reasons, reasons=reasons, advice=advice)


def _worst(name: str, named: Sequence[tuple[str, str, Quality]]) -> tuple[str, str, Quality, float]:
    """The face that is worst on feature `name`, and its value in the reason's units."""
    value = {"eye_distance": lambda q: q.eye_distance, "yaw": lambda q: -abs(q.yaw), "score": lambda q: q.score,
             "sharpness": lambda q: q.sharpness, "roll": lambda q: -abs(q.roll)}[name]
    who, person, q = min(named, key=lambda n: value(n[2]))
    return who, person, q, abs(value(q))


def fallback_judge(slope: float, center: float, threshold: float, uncertain_probability: float) -> Judge:
    """A folder without a learned judge: its logistic calibration on the distance alone, with the old band
    (uncertain within the distance over which the probability moves from 0.5 to `uncertain_probability`)."""
    coef = (-slope,) + (0.0,) * (len(FEATURES) - 1)
    # p = 1 / (1 + exp(slope (d - center))) = sigmoid(-slope * margin + slope * (center - threshold)).
    band = 1.0 - uncertain_probability
    return Judge(threshold=threshold, intercept=slope * (center - threshold), coef=coef, max_doubt=band)
