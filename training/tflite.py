"""Export a weights folder's inference graph for OpenCV: `python -m training.tflite --weights FOLDER`.

The app embeds faces through LiteRT or `cv2.dnn.readNetFromTFLite` (facesim.infer.GraphEncoder), about 3x faster
than NumPy and without importing TensorFlow. This writes `encoder.tflite` from the Keras weights file, one
way for both architectures: an inference form of the network (the small CNN: batch norm folded into the
projection, flatten + dense rewritten as one convolution over the last feature map, since OpenCV's TFLite
importer has no SHAPE operator; the ported ResNet: affine layers and the input normalisation folded into the
convolutions), traced at batch 1 with every variable frozen into a constant (OpenCV refuses variable ops),
no L2 normalisation (done in NumPy). It then checks the graph against the Keras model on random inputs and
names the file in config.json.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import numpy as np

log = logging.getLogger("training.tflite")

INFERENCE_FILE = "encoder.tflite"
#: Largest difference allowed between the exported graph and Keras on unit embeddings.
TOLERANCE = 1e-4


def inference_model(model, config):
    """A Keras model computing `model`'s embedding before L2 normalisation, without Flatten or batch norm."""
    import keras

    if config.architecture == "dlib_resnet":
        return resnet_inference_model(model, config)

    from facesim.infer import BN_EPSILON

    inputs = keras.Input((config.input_size, config.input_size, 3), batch_size=1, name="face")
    x = model.get_layer("rescale")(inputs)
    for i in range(len(config.widths)):
        for j in range(2):
            for kind in ("conv", "bn", "relu"):
                x = model.get_layer(f"stage{i}_{kind}{j}")(x)
    if config.head == "gap":
        x = keras.layers.AveragePooling2D(int(x.shape[1]), name="pool")(x)
    side, channels = int(x.shape[1]), int(x.shape[3])
    kernel, bias = model.get_layer("project").get_weights()
    gamma, beta, mean, var = model.get_layer("project_bn").get_weights()
    scale = gamma / np.sqrt(var + BN_EPSILON)
    head = keras.layers.Conv2D(config.embedding_dim, side, padding="valid", name="project_conv")
    x = head(x)  # Flatten is row-major over (h, w, c): the dense kernel reshaped is the same product
    head.set_weights([kernel.reshape(side, side, channels, -1) * scale, bias * scale + beta - mean * scale])
    return keras.Model(inputs, x, name="facesim_encoder_inference")


def resnet_inference_model(model, config):
    """The ported ResNet with each `Affine` folded into its convolution (kernel * gamma, bias * gamma + beta)."""
    from facesim import dlib_resnet

    folded = dlib_resnet.build(config, fold_affine=True)
    for layer in folded.layers:
        if not layer.weights:
            continue
        source = model.get_layer(layer.name)
        if layer.name.endswith("_conv"):
            kernel, bias = source.get_weights()
            gamma, beta = model.get_layer(layer.name[: -len("_conv")] + "_affine").get_weights()
            if layer.name == "stem_conv":  # (x - mean) / 256 folded in: exact, the stem convolution is unpadded
                mean = np.asarray(dlib_resnet.MEAN_RGB, np.float32)
                kernel = kernel * dlib_resnet.INPUT_SCALE
                bias = bias - np.einsum("hwio,i->o", kernel, mean)
            layer.set_weights([kernel * gamma, bias * gamma + beta])
        else:
            layer.set_weights(source.get_weights())
    return folded


def _frozen_tflite(model, config) -> bytes:
    """TFLite bytes of `model` with every variable frozen into a constant (OpenCV refuses variable ops)."""
    import tensorflow as tf
    from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

    fn = tf.function(lambda x: model(x, training=False))
    concrete = fn.get_concrete_function(tf.TensorSpec((1, config.input_size, config.input_size, 3), tf.float32))
    frozen = convert_variables_to_constants_v2(concrete)
    return tf.lite.TFLiteConverter.from_concrete_functions([frozen]).convert()


def write_inference_file(folder: str | Path, config, model) -> Path:
    """Write `folder/encoder.tflite` for the Keras encoder `model` and check it against `model`."""
    from facesim.infer import GraphEncoder

    folder = Path(folder)
    data = _frozen_tflite(inference_model(model, config), config)
    path = folder / INFERENCE_FILE
    part = path.with_suffix(".tflite.tmp")
    part.write_bytes(data)
    x = np.random.default_rng(0).uniform(0, 255, (8, config.input_size, config.input_size, 3)).astype(np.float32)
    from facesim.dnn import runtime

    want = np.asarray(model(x, training=False))
    want = want / np.linalg.norm(want, axis=1, keepdims=True)  # both as unit vectors (the CNN's already are)
    # Checked in every runtime the app may use: OpenCV, and LiteRT where it is installed.
    err = max(float(np.abs(GraphEncoder(config, part, runtime=kind)(x) - want).max())
              for kind in sorted({"opencv", runtime()}))
    if err > TOLERANCE:
        part.unlink()
        raise RuntimeError(f"the exported graph differs from the Keras model by {err:.2e} (> {TOLERANCE})")
    part.replace(path)
    log.info("wrote %s (%.1f MB; max difference from Keras %.1e)", path, path.stat().st_size / 2**20, err)
    return path


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.tflite", description=__doc__.split("\n")[0])
    p.add_argument("--weights", required=True, help="a weights folder (config.json + weights file)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from facesim import FaceSimError
    from facesim.model import ModelConfig, build_encoder

    folder = Path(args.weights)
    try:
        config = ModelConfig.read(folder)
        model = build_encoder(config)
        model.load_weights(folder / config.weights_file)
    except FaceSimError as exc:
        print(f"export failed: {exc}", file=sys.stderr)
        return 2
    except (OSError, ValueError) as exc:  # a missing, unreadable or mismatched weights file
        print(f"export failed: {folder / config.weights_file}: {exc}", file=sys.stderr)
        return 2
    path = write_inference_file(folder, config, model)
    with_inference(config, path).write(folder)
    print(f"wrote {path}")
    return 0


def with_inference(config, path: Path):
    """`config` naming the inference file `path` and recording its checksum."""
    from facesim.model import file_sha256

    return config.with_(inference_file=path.name, info={**config.info, "inference_sha256": file_sha256(path)})


if __name__ == "__main__":
    sys.exit(main())
