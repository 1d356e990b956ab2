"""compare / verify on real LFW photos with the shipped weights, and the held-out accuracy guard."""

from __future__ import annotations

import json

import numpy as np
import pytest

import facesim
from conftest import LFW, WEIGHTS, lfw
from facesim import FaceSimError, NoFaceFoundError, compare, verify


def test_compare_same_person_matches_and_stranger_does_not(trio):
    r = compare(trio["anchor"], trio["same"], trio["other"])
    assert r.matches == "A" and r.a.is_match and not r.b.is_match
    assert r.a.distance < r.threshold < r.b.distance
    assert r.a.probability > 0.5 > r.b.probability
    assert r.headline == "Candidate A is the same person as the anchor"
    swapped = compare(trio["anchor"], trio["other"], trio["same"])
    assert swapped.matches == "B"
    assert swapped.b.distance == pytest.approx(r.a.distance, abs=1e-5)


def test_compare_neither_and_both(trio):
    r = compare(trio["anchor"], lfw("Serena_Williams", 2), lfw("Jennifer_Aniston", 1))
    assert r.matches == "neither"
    same = compare(trio["anchor"], trio["anchor"], trio["anchor"])
    assert same.matches == "both" and same.a.distance < 1e-5 and same.a.verdict == "match"


def test_inputs_as_bytes_and_arrays_agree(trio):
    by_path = verify(trio["anchor"], trio["same"])
    by_bytes = verify(trio["anchor"].read_bytes(), facesim.load_image(trio["same"]))
    assert by_bytes.distance == pytest.approx(by_path.distance, abs=1e-6)
    assert by_path.is_match and by_path.threshold == json.loads((WEIGHTS / "config.json").read_text())["threshold"]


def test_threshold_override(trio):
    r = compare(trio["anchor"], trio["same"], trio["other"], threshold=0.0)
    assert r.matches == "neither" and r.threshold == 0.0


def test_errors_name_the_photo(trio):
    blank = np.full((200, 200, 3), 255, np.uint8)
    with pytest.raises(NoFaceFoundError, match="^candidate B: no face"):
        compare(trio["anchor"], trio["same"], blank)
    with pytest.raises(FaceSimError, match="^anchor: .*face 3 .* 1 face"):
        compare(trio["anchor"], trio["same"], trio["other"], face_index=(2, 0, 0))
    with pytest.raises(FaceSimError, match="^photo A: "):
        verify(b"not an image", trio["same"])


def fixed_test_subset(n_each: int = 150):
    """The first n same and n different pairs of each test fold (8 and 9) of pairs.txt."""
    from training.data import read_pairs

    pairs = [p for p in read_pairs(LFW) if p.fold in (8, 9)]
    out = []
    for fold in (8, 9):
        same = [p for p in pairs if p.fold == fold and p.same][: n_each // 2]
        diff = [p for p in pairs if p.fold == fold and not p.same][: n_each // 2]
        out += same + diff
    return out


@pytest.mark.slow
def test_heldout_accuracy_of_shipped_weights_has_not_dropped():
    """Recompute accuracy on 300 fixed test pairs with the full pipeline; compare with metrics.json."""
    from training.evaluate import PipelineEmbedder

    stated = json.loads((WEIGHTS / "metrics.json").read_text())
    encoder = facesim.load_encoder(WEIGHTS)
    emb = PipelineEmbedder(encoder)
    pairs = fixed_test_subset()
    d = emb.distances([(str(LFW / p.a), str(LFW / p.b)) for p in pairs])
    acc = float(np.mean((d <= encoder.config.threshold) == np.array([p.same for p in pairs])))
    assert acc >= stated["pair_accuracy"] - 0.04, (acc, stated["pair_accuracy"])


@pytest.mark.slow
def test_wild_accuracy_of_shipped_weights_has_not_dropped():
    """PROTOCOL.md B on a fixed subset (every 4th of the 600 wild pairs, 150 pairs) through the public API."""
    from conftest import DATA
    from training.data import wild_pairs
    from training.evaluate import WildEmbedder

    stated = json.loads((WEIGHTS / "metrics.json").read_text())
    encoder = facesim.load_encoder(WEIGHTS)
    pairs, same = wild_pairs(DATA / "celeba-wild-val")
    pairs, same = pairs[::4], same[::4]
    d = WildEmbedder(encoder).distances(pairs)
    correct = np.where(np.isnan(d), False, (d <= encoder.config.threshold) == same)  # no face: wrong
    assert len(pairs) == 150
    assert correct.mean() >= stated["wild_pair_accuracy"] - 0.06, (correct.mean(), stated["wild_pair_accuracy"])
