"""Gallery search (`rank`) and the explanation of a verdict (`explain`) on real LFW faces."""

from __future__ import annotations

import numpy as np
import pytest

import facesim
from conftest import lfw
from facesim import FaceSimError, NoFaceFoundError, explain, rank


def test_rank_puts_the_same_person_first_and_reports_bad_photos_last(trio, tmp_path):
    junk = tmp_path / "notes.jpg"
    junk.write_text("not an image")
    blank = np.full((200, 200, 3), 255, np.uint8)
    photos = [lfw("Serena_Williams", 1), junk, lfw("George_W_Bush", 5), blank, lfw("Colin_Powell", 1),
              lfw("George_W_Bush", 2)]
    ranked = rank(trio["anchor"], photos)
    assert len(ranked) == len(photos) and sorted(r.index for r in ranked) == list(range(len(photos)))
    assert {ranked[0].index, ranked[1].index} == {2, 5}  # both Bush photos first
    assert ranked[0].is_match and ranked[1].is_match
    usable = [r for r in ranked if r.error is None]
    assert [r.distance for r in usable] == sorted(r.distance for r in usable)
    assert not any(r.is_match for r in usable[2:])
    bad = ranked[-2:]
    assert [r.index for r in bad] == [1, 3] and all(r.verdict == "error" and r.distance is None for r in bad)
    assert "not an image" in bad[0].error and "no face" in bad[1].error
    assert ranked[0].to_dict()["index"] == ranked[0].index


def test_rank_distances_equal_verify(trio):
    ranked = rank(trio["anchor"], [trio["same"], trio["other"]])
    by_index = {r.index: r for r in ranked}
    assert by_index[0].distance == pytest.approx(facesim.verify(trio["anchor"], trio["same"]).distance, abs=1e-5)


def test_rank_anchor_without_face_raises_naming_it(trio):
    with pytest.raises(NoFaceFoundError, match="^anchor: no face"):
        rank(np.full((200, 200, 3), 255, np.uint8), [trio["same"]])


def test_rank_reports_progress(trio):
    seen = []
    rank(trio["anchor"], [trio["same"], trio["other"], trio["same"]], on_progress=lambda d, t: seen.append((d, t)))
    assert seen == [(3, 3)]  # photos are searched in chunks of RANK_CHUNK (one detector pass each)
    from facesim.api import RANK_CHUNK

    seen.clear()
    rank(trio["anchor"], [trio["same"], trio["other"]] * (RANK_CHUNK // 2 + 1), on_progress=lambda d, t: seen.append((d, t)))
    total = 2 * (RANK_CHUNK // 2 + 1)
    assert seen == [(RANK_CHUNK, total), (total, total)]


@pytest.fixture(scope="module")
def explained(trio):
    return explain(trio["anchor"], trio["same"])


def test_explanation_maps_are_informative_and_deterministic(explained, trio):
    x = explained
    size = facesim.load_encoder().config.crop_size  # the shipped encoder's chip
    assert x.crop_a.shape == (size, size, 3) and x.heatmap_a.shape == (size, size)
    assert x.heatmap_b.shape == (size, size) and x.heatmap_a.dtype == np.float32
    assert x.heatmap_a.std() > 1e-4 and x.heatmap_b.std() > 1e-4  # not constant
    assert x.distance == pytest.approx(facesim.verify(trio["anchor"], trio["same"]).distance, abs=1e-5)
    again = explain(trio["anchor"], trio["same"])
    np.testing.assert_array_equal(again.heatmap_a, x.heatmap_a)


def test_most_important_region_moves_the_distance_most(explained):
    """Hide the 16 px square the map rates most important, then the least: the first moves the distance more."""
    x = explained
    encoder = facesim.load_encoder()
    # The maps are measured without flip test-time augmentation (half the cost): so is this check.
    other = encoder.embed_crops(x.crop_b[None], flip=False)[0]
    base = float(np.linalg.norm(encoder.embed_crops(x.crop_a[None], flip=False)[0] - other))

    def distance_with_hidden(y, xx):
        c = x.crop_a.copy()
        c[y : y + 16, xx : xx + 16] = c[8:72, 8:72].reshape(-1, 3).mean(0).astype(np.uint8)
        return float(np.linalg.norm(encoder.embed_crops(c[None], flip=False)[0] - other))

    # Score every 16 px window inside the encoder's view by its mean |heat|.
    h = np.abs(x.heatmap_a)
    windows = {(y, xx): h[y : y + 16, xx : xx + 16].mean() for y in range(8, 57, 4) for xx in range(8, 57, 4)}
    top = max(windows, key=windows.get)
    low = min(windows, key=windows.get)
    assert abs(distance_with_hidden(*top) - base) > abs(distance_with_hidden(*low) - base)


def test_explain_names_the_photo_without_a_face(trio):
    with pytest.raises(FaceSimError, match="^photo B: no face"):
        explain(trio["anchor"], np.full((200, 200, 3), 255, np.uint8))
