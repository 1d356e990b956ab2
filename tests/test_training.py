"""Training pieces: losses against hand-computed values, mining, the protocol split, a tiny real run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import LFW
from training import data as D
from training.metrics import best_threshold, fit_calibration, roc_auc, tar_at_far, wilson_interval
from training.siamese import (DistanceLayer, TripletTrainer, batch_hard_triplets, build_siamese, distillation_loss,
                              random_triplets, triplet_loss)


def test_triplet_loss_hand_computed():
    d_ap = np.array([0.2, 0.9, 0.5], np.float32)
    d_an = np.array([1.0, 0.4, 0.6], np.float32)
    # max(d_ap - d_an + 0.3, 0): max(-0.5, 0)=0, max(0.8, 0)=0.8, max(0.2, 0)=0.2 -> mean 1/3
    assert float(triplet_loss(d_ap, d_an, 0.3)) == pytest.approx(1.0 / 3.0, abs=1e-6)


def test_distance_layer_and_siamese():
    a = np.array([[1.0, 0.0]], np.float32)
    p = np.array([[0.0, 1.0]], np.float32)
    n = np.array([[-1.0, 0.0]], np.float32)
    d_ap, d_an = DistanceLayer()(a, p, n)
    assert float(d_ap[0]) == pytest.approx(np.sqrt(2), abs=1e-5) and float(d_an[0]) == pytest.approx(2.0, abs=1e-5)

    import keras

    enc = keras.Sequential([keras.Input((4,)), keras.layers.UnitNormalization()])
    model = build_siamese(enc)
    x = np.eye(4, dtype=np.float32)[:2]
    out = model([x, x, x[::-1]])
    assert np.allclose(out[0], 0, atol=1e-3) and np.allclose(out[1], np.sqrt(2), atol=1e-5)


def test_batch_hard_mining_picks_hardest():
    emb = np.array([[0.0], [1.0], [3.0], [1.2], [10.0]], np.float32)
    labels = np.array([0, 0, 0, 1, 2], np.int32)
    valid, p, n = (np.asarray(x).tolist() for x in batch_hard_triplets(emb, labels))
    assert valid == [True, True, True, False, False]  # people 1 and 2 have no positive
    assert p[:3] == [2, 2, 0]  # farthest same-person
    assert n[:3] == [3, 3, 3]  # nearest other person


def test_trainer_loss_by_hand():
    """compute_loss: batch-hard triplets on the labelled rows; distillation on every row, extra ones too."""
    import keras

    enc = keras.Sequential([keras.Input((2,)), keras.layers.UnitNormalization()])
    x = np.array([[1, 0], [0, 1], [1, 0.1], [-1, 0]], np.float32)  # rows 0, 1: person 0; 2: person 1; 3: extra
    emb = np.asarray(enc(x))
    labels = np.array([0, 0, 1], np.int32)
    teacher = emb[::-1].copy()
    plain = TripletTrainer(enc, margin=0.3)
    y = {"labels": labels, "teacher": teacher}
    d = lambda i, j: float(np.linalg.norm(emb[i] - emb[j]))  # noqa: E731
    # anchors 0 and 1 (person 1 has no positive): hardest negative of both is row 2
    want = np.mean([max(d(0, 1) - d(0, 2) + 0.3, 0), max(d(1, 0) - d(1, 2) + 0.3, 0)])
    assert float(plain.compute_loss(x, y, emb)) == pytest.approx(want, abs=1e-5)
    distilled = TripletTrainer(enc, margin=0.3, distill_weight=2.0)
    l2 = np.mean(np.sum((emb - teacher) ** 2, axis=1))
    assert float(distilled.compute_loss(x, y, emb)) == pytest.approx(want + 2.0 * l2, abs=1e-5)
    rel = np.mean((emb @ emb.T - teacher @ teacher.T) ** 2)
    assert float(distillation_loss(emb, teacher, "relational")) == pytest.approx(rel, abs=1e-6)
    # A rotated teacher: relational distillation does not care, L2 does.
    rot = np.array([[0, -1], [1, 0]], np.float32)
    assert float(distillation_loss(emb, emb @ rot, "relational")) == pytest.approx(0.0, abs=1e-6)
    assert float(distillation_loss(emb, emb @ rot, "l2")) == pytest.approx(2.0, abs=1e-5)


def test_random_triplets_are_valid():
    labels = np.array([0, 0, 1, 1, 1, 2])
    t = random_triplets(labels, 200, np.random.default_rng(0))
    assert (labels[t[:, 0]] == labels[t[:, 1]]).all() and (t[:, 0] != t[:, 1]).all()
    assert (labels[t[:, 0]] != labels[t[:, 2]]).all()


def test_metrics_against_hand_values():
    d = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 0.6])
    same = np.array([1, 1, 0, 1, 0, 0], bool)
    thr, acc = best_threshold(d, same)
    assert acc == pytest.approx(5 / 6) and (0.2 < thr < 0.3 or 0.4 < thr < 0.5)
    assert roc_auc(d, same) == pytest.approx(8 / 9)
    assert roc_auc(np.array([0.1, 0.9]), np.array([True, False])) == 1.0
    lo, hi = wilson_interval(90, 100)
    assert lo == pytest.approx(0.8256, abs=1e-3) and hi == pytest.approx(0.9448, abs=1e-3)
    tar, _ = tar_at_far(d, same, 0.0)
    assert tar == pytest.approx(2 / 3)
    cal = fit_calibration(np.r_[np.linspace(0, 1, 50), np.linspace(0.8, 2, 50)], np.r_[np.ones(50), np.zeros(50)])
    assert cal.slope > 0 and 0.7 < cal.center < 1.1


def test_protocol_split_matches_protocol_and_leaks_nothing():
    split = D.protocol_split(LFW)
    people = D.list_people(LFW)
    assert len(split.heldout_people) == 1333
    assert sum(len(people[n]) for n in split.heldout_people) == 3731
    assert len(split.train_people) == 4416
    assert sum(len(people[n]) for n in split.train_people) == 9502
    multi = [n for n in split.train_people if len(people[n]) >= 2]
    assert len(multi) == 1176 and sum(len(people[n]) for n in multi) == 6262
    assert len(split.test_people) == 890
    assert sum(len(people[n]) >= 2 for n in split.test_people) == 346
    assert len(split.validation_pairs) == 600 and len(split.test_pairs) == 1200
    assert not set(split.train_people) & split.heldout_people
    for pr in split.validation_pairs + split.test_pairs:
        assert pr.a.split("/")[0] not in split.train_people and pr.b.split("/")[0] not in split.train_people


def test_leak_check_fires():
    with pytest.raises(D.LeakError):
        D.check_no_leak(["Alice", "George_W_Bush"], {"George_W_Bush"})


def test_list_people_numbered_layout(tmp_path):
    for pid in ("0", "1"):
        (tmp_path / pid).mkdir()
        for n in (10, 2, 1):
            (tmp_path / pid / f"{n}.jpg").write_bytes(b"x")
    people = D.list_people(tmp_path)
    assert list(people) == ["0", "1"] and [p.name for p in people["0"]] == ["1.jpg", "2.jpg", "10.jpg"]


@pytest.fixture(scope="module")
def few_people(tmp_path_factory):
    """A folder-per-person dataset of 8 LFW training people, by symlink (no image is copied)."""
    root = tmp_path_factory.mktemp("few_people")
    split = D.protocol_split(LFW)
    people = D.list_people(LFW)
    chosen = [n for n in split.train_people if 3 <= len(people[n]) <= 6][:8]
    for n in chosen:
        (root / n).mkdir()
        for f in people[n]:
            (root / n / f.name).symlink_to(f)
    return root


def test_tiny_training_run_writes_complete_folder(few_people, tmp_path):
    from facesim.hub import folder_files
    from facesim.model import Encoder
    from training.train import main

    out = tmp_path / "run"
    assert main(["--data", str(few_people), "--out", str(out), "--epochs", "1", "--people", "4", "--per-person",
                 "3", "--singletons", "0", "--widths", "8,8,8,8", "--embedding-dim", "16", "--eval-every", "2",
                 "--workers", "1", "--wild", ""]) == 0
    files = set(folder_files(out))
    assert {"encoder.weights.h5", "config.json", "metrics.json", "README.md", "training_curves.png"} <= files
    config = json.loads((out / "config.json").read_text())
    assert config["threshold"] is not None and "calibration" in config  # None if the tiny model separates nothing
    assert "python -m training.train" in config["info"]["training"]["command"]
    assert "validation_accuracy" in json.loads((out / "metrics.json").read_text())
    assert "triplet loss" in (out / "README.md").read_text()
    enc = Encoder.load(out)
    assert enc.embed_crops(np.zeros((1, 80, 80, 3), np.uint8)).shape == (1, 16)
    assert config["inference_file"] == "encoder.tflite" and "encoder.tflite" in files  # what the app runs


def test_the_same_command_trains_on_jax(few_people, tmp_path):
    """Backend-agnostic Keras 3: KERAS_BACKEND=jax runs the training command unchanged (EMA and CosFace
    included); the weights it writes load into the app's encoder once the graph is exported."""
    import os
    import subprocess
    import sys

    from conftest import ROOT
    from facesim.model import Encoder
    from training.tflite import main as export_graph

    out = tmp_path / "jax"
    args = ["--data", str(few_people), "--out", str(out), "--steps", "4", "--people", "4", "--per-person", "3",
            "--singletons", "0", "--widths", "8,8,8,8", "--embedding-dim", "16", "--eval-every", "2",
            "--workers", "1", "--wild", "", "--ema", "0.9", "--cosface-weight", "0.1"]
    r = subprocess.run([sys.executable, "-m", "training.train", *args], cwd=ROOT, capture_output=True, text=True,
                       env={**os.environ, "KERAS_BACKEND": "jax"}, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "Keras backend jax" in r.stderr
    config = json.loads((out / "config.json").read_text())
    assert config["info"]["training"]["keras_backend"] == "jax" and config["inference_file"] is None
    assert export_graph(["--weights", str(out)]) == 0
    emb = Encoder.load(out).embed_crops(np.random.default_rng(0).integers(0, 256, (2, 80, 80, 3), dtype=np.uint8))
    assert emb.shape == (2, 16) and np.linalg.norm(emb[0] - emb[1]) > 0


def test_plot_batch_writes_png(few_people, tmp_path):
    from training.plot_batch import main

    out = tmp_path / "batch.png"
    assert main(["--data", str(few_people), "--out", str(out), "--n", "3"]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_augment_imitates_real_photos_reproducibly():
    from training.augment import augment

    crops = np.random.default_rng(1).integers(0, 256, (16, 80, 80, 3), dtype=np.uint8)
    a = augment(crops, np.random.default_rng(0), 64)
    b = augment(crops, np.random.default_rng(0), 64)
    plain = augment(crops, np.random.default_rng(0), 64, real=False)
    assert a.shape == (16, 64, 64, 3) and a.dtype == np.float32 and 0 <= a.min() and a.max() <= 255
    np.testing.assert_array_equal(a, b)  # seeded: a training run is reproducible
    assert np.abs(a - plain).mean() > 1.0  # the photo faults change the images


def test_batches_add_unlabelled_faces_for_distillation_only():
    import argparse

    from training.data import FaceSet
    from training.train import make_batch, person_groups

    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(6), 3).astype(np.int32)
    faces = FaceSet(rng.integers(0, 256, (18, 80, 80, 3), dtype=np.uint8), tuple(f"p{i}" for i in range(18)),
                    tuple(f"n{k}" for k in range(6)), labels, np.zeros(18, bool))
    extra = (rng.integers(0, 256, (10, 80, 80, 3), dtype=np.uint8), tuple(f"extra/{i}.jpg" for i in range(10)))
    teacher = rng.normal(size=(28, 8)).astype(np.float32)
    args = argparse.Namespace(mining="batch-hard", people=4, per_person=2, singletons=0, extra_per_batch=5,
                              input_size=64, no_real_augment=False)
    b = make_batch(faces, args, np.random.default_rng(3), teacher, person_groups(faces), extra)
    assert b["x"].shape == (13, 64, 64, 3) and b["labels"].shape == (8,)  # labels only for the labelled part
    assert b["teacher"].shape == (13, 8)
    # The last five teacher rows are extra faces' targets (rows after the 18 labelled images).
    assert any(np.allclose(b["teacher"][-1], teacher[r]) for r in range(18, 28))


def test_a_mirrored_view_gets_the_mirrored_teacher_target(tmp_path):
    """--teacher-flip: each row's distillation target is the teacher's embedding of the view the student sees."""
    import argparse

    from training.data import FaceSet
    from training.train import load_teacher, make_batch, person_groups

    n = 12
    crops = np.zeros((n, 80, 80, 3), np.uint8)
    crops[:, :, :40] = 255  # bright on the left: a mirrored view is bright on the right
    labels = np.repeat(np.arange(4), 3).astype(np.int32)
    faces = FaceSet(crops, tuple(f"p/{i}.jpg" for i in range(n)), tuple(f"n{k}" for k in range(4)), labels,
                    np.zeros(n, bool))
    rng = np.random.default_rng(0)
    plain, mirrored = rng.normal(size=(n, 8)), rng.normal(size=(n, 8))
    np.savez(tmp_path / "t.npz", paths=np.array(faces.paths), embeddings=plain, embeddings_flip=mirrored)
    teacher = load_teacher(tmp_path / "t.npz", faces, flip=True)
    assert teacher.shape == (n, 2, 8) and np.allclose(np.linalg.norm(teacher, axis=-1), 1.0)
    args = argparse.Namespace(mining="batch-hard", people=4, per_person=3, singletons=0, extra_per_batch=0,
                              input_size=64, no_real_augment=True)
    b = make_batch(faces, args, np.random.default_rng(5), teacher, person_groups(faces))
    seen_mirrored = b["x"][:, :, 40:].mean(axis=(1, 2, 3)) > b["x"][:, :, :24].mean(axis=(1, 2, 3))
    assert 0 < seen_mirrored.sum() < len(seen_mirrored)  # both kinds of view in the batch
    for x_target, mirrored_view in zip(b["teacher"], seen_mirrored):
        rows = np.flatnonzero(np.all(np.isclose(teacher[:, int(mirrored_view)], x_target), axis=1))
        assert len(rows) == 1  # the target is that view's teacher embedding, not the other one
    with pytest.raises(SystemExit, match="no mirrored views"):
        np.savez(tmp_path / "plain.npz", paths=np.array(faces.paths), embeddings=plain)
        load_teacher(tmp_path / "plain.npz", faces, flip=True)


def test_threshold_uses_both_validation_sets_and_wild_without_face_is_left_out():
    from training.evaluate import choose_threshold

    lfw_d = np.array([0.2, 0.3, 1.2, 1.3])
    lfw_same = np.array([True, True, False, False])
    wild_d = np.array([0.5, 0.6, np.nan, 1.4])
    wild_same = np.array([True, True, True, False])
    threshold, calibration = choose_threshold(lfw_d, lfw_same, wild_d, wild_same)
    assert 0.6 < threshold < 1.2
    assert calibration.probability(0.3) > 0.5 > calibration.probability(1.3)
