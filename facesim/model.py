"""The encoder: its config, its architecture rebuilt in code, weights-only loading, and embedding."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import threading
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property, lru_cache
from pathlib import Path

import numpy as np

from .errors import WeightsError

__all__ = [
    "ModelConfig",
    "Calibration",
    "Encoder",
    "build_encoder",
    "load_encoder",
    "DEFAULT_WEIGHTS",
    "WEIGHTS_FILE",
    "CONFIG_FILE",
    "file_sha256",
]

log = logging.getLogger(__name__)

#: The encoder architectures a config.json may name, each built by a module of its own.
ARCHITECTURES = ("cnn", "dlib_resnet")
#: The shipped weights folder (the app's default model).
DEFAULT_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_FILE = "encoder.weights.h5"
CONFIG_FILE = "config.json"


@dataclass(frozen=True)
class Calibration:
    """Logistic map from distance to the probability of "same person": 1 / (1 + exp(slope * (d - center)))."""

    slope: float
    center: float

    def probability(self, distance: float) -> float:
        z = self.slope * (distance - self.center)
        return float(1.0 / (1.0 + math.exp(min(50.0, max(-50.0, z)))))

    def distance_at(self, probability: float) -> float:
        """The distance whose calibrated probability is `probability` (0 < p < 1)."""
        return self.center + math.log((1.0 - probability) / probability) / self.slope


@dataclass(frozen=True)
class ModelConfig:
    """Everything needed to rebuild the encoder and use it as evaluation calibrated it.

    `threshold` and `calibration` are written by `python -m training.evaluate` from validation pairs;
    they are None until a model has been evaluated.
    """

    #: Which network: "cnn" (the small CNN trained here from scratch, `facesim.cnn`) or "dlib_resnet" (dlib's
    #: face ResNet ported to Keras and fine-tuned here, `facesim.dlib_resnet`). Each knows its chip.
    architecture: str = "cnn"
    input_size: int = 64
    crop_size: int = 80
    widths: tuple[int, ...] = (32, 64, 128, 160)
    embedding_dim: int = 128
    #: "flatten": the last feature map flattened into the projection; "gap": its global average.
    head: str = "flatten"
    dropout: float = 0.2
    flip_tta: bool = True
    threshold: float | None = None
    calibration: Calibration | None = None
    #: A verdict is "uncertain" when the distance is closer to the threshold than the distance over
    #: which the calibrated probability moves from 0.5 to this value.
    uncertain_probability: float = 0.75
    #: The learned probability and "uncertain" rule (`facesim.uncertainty.Judge.to_dict`), written by
    #: `python -m training.evaluate`; without it, `calibration` and `uncertain_probability` answer.
    judge: dict | None = None
    #: Anchor sets (`facesim.anchors`): per number of anchor photos ("2".."5") its threshold and judge, and
    #: "outlier_distance" (per number of other photos, the distance beyond which a photo is left out);
    #: written by `python -m training.evaluate`. None: one anchor photo only.
    anchor_sets: dict | None = None
    weights_file: str = WEIGHTS_FILE
    #: The inference graph exported from the weights file (`python -m training.tflite`), run by OpenCV;
    #: None runs the weights file in NumPy instead.
    inference_file: str | None = None
    #: Free-form provenance (split, seed, training command, checksums); not used to rebuild the model.
    info: dict = field(default_factory=dict, compare=False)

    @classmethod
    def from_dict(cls, data: dict) -> ModelConfig:
        data = dict(data)
        known = {f for f in cls.__dataclass_fields__}
        unknown = set(data) - known
        if unknown:
            raise WeightsError(f"config.json has unknown keys {sorted(unknown)}", input_name="weights")
        if data.get("architecture", "cnn") not in ARCHITECTURES:
            raise WeightsError(f"config.json names an unknown architecture {data['architecture']!r} "
                               f"(known: {', '.join(ARCHITECTURES)})", input_name="weights")
        if "widths" in data:
            data["widths"] = tuple(int(w) for w in data["widths"])
        if data.get("calibration") is not None:
            data["calibration"] = Calibration(**data["calibration"])
        if data.get("judge") is not None:
            from .uncertainty import Judge

            try:
                Judge.from_dict(data["judge"])
            except (KeyError, TypeError, ValueError) as exc:
                raise WeightsError(f"config.json has an invalid judge ({exc})", input_name="weights") from None
        return cls(**data)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def read(cls, folder: str | Path) -> ModelConfig:
        path = Path(folder) / CONFIG_FILE
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            raise WeightsError(f"{path} is missing", input_name="weights") from None
        except (OSError, ValueError) as exc:
            raise WeightsError(f"{path} is not valid JSON ({exc})", input_name="weights") from None
        if not isinstance(data, dict):
            raise WeightsError(f"{path} must hold a JSON object", input_name="weights")
        try:
            return cls.from_dict(data)
        except TypeError as exc:
            raise WeightsError(f"{path} is invalid ({exc})", input_name="weights") from None

    def write(self, folder: str | Path) -> Path:
        """Write config.json atomically into `folder`."""
        path = Path(folder) / CONFIG_FILE
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(self.to_dict(), indent=2, sort_keys=True) + "\n")
        tmp.replace(path)
        return path

    @property
    def uncertain_margin(self) -> float:
        """Half-width, in distance, of the "uncertain" band around the threshold (0 when uncalibrated)."""
        if self.calibration is None:
            return 0.0
        p = self.uncertain_probability
        return math.log(p / (1.0 - p)) / self.calibration.slope

    @cached_property
    def judging(self):
        """The probability and "uncertain" rule (`facesim.uncertainty.Judge`), or None when uncalibrated.

        A folder evaluated before the learned rule existed gets its distance-only calibration with the old band.
        """
        from .uncertainty import Judge, fallback_judge

        if self.judge is not None:
            return Judge.from_dict(self.judge)
        if self.calibration is None or self.threshold is None:
            return None
        return fallback_judge(self.calibration.slope, self.calibration.center, self.threshold,
                              self.uncertain_probability)

    def for_anchors(self, count: int):
        """(threshold, judge) calibrated for `count` anchor photos (1: the model's own).

        Raises:
            WeightsError: the model was not calibrated for that many anchor photos.
        """
        if count == 1:
            return self.threshold, self.judging
        entry = (self.anchor_sets or {}).get(str(count))
        if entry is None:
            raise WeightsError(f"this model was not calibrated for {count} anchor photos (python -m training.evaluate "
                               "calibrates 2 to 5); use one photo of the anchor", input_name="weights")
        from .uncertainty import Judge

        return float(entry["threshold"]), Judge.from_dict(entry["judge"])

    @property
    def outlier_limits(self) -> dict[int, float] | None:
        """Per number of other anchor photos, the distance beyond which a photo is left out (None: none)."""
        limits = (self.anchor_sets or {}).get("outlier_distance")
        return {int(k): float(v) for k, v in limits.items()} if limits else None

    def with_(self, **changes) -> ModelConfig:
        return replace(self, **changes)

    @classmethod
    def for_architecture(cls, architecture: str, **changes) -> ModelConfig:
        """The default config of an architecture ("cnn" or "dlib_resnet"), with `changes`."""
        if architecture == "dlib_resnet":
            from . import dlib_resnet

            base = dict(architecture=architecture, input_size=dlib_resnet.CHIP_SIZE, crop_size=dlib_resnet.CHIP_SIZE,
                        widths=(), embedding_dim=128, head="gap", dropout=0.0, flip_tta=False)
        elif architecture == "cnn":
            base = {}
        else:
            raise WeightsError(f"unknown architecture {architecture!r}", input_name="weights")
        return cls(**{**base, **changes})

    @property
    def chip(self):
        """The aligned crop this encoder was trained on (`facesim.align.Chip`): size, template, fit."""
        from .align import Chip

        if self.architecture == "dlib_resnet":
            from . import dlib_resnet

            return Chip(self.crop_size, dlib_resnet.TEMPLATE, fit="similarity")
        from . import cnn

        return Chip(self.crop_size, cnn.TEMPLATE, fit="level")


def build_encoder(config: ModelConfig):
    """Build the Keras network `config.architecture` names, with fresh weights (load weights into it).

    "cnn": `facesim.cnn.build` (the small CNN trained here, outputs unit vectors); "dlib_resnet":
    `facesim.dlib_resnet.build` (dlib's ResNet, outputs raw descriptors that `Encoder` normalises).
    Inputs are RGB in [0, 255] of shape (input_size, input_size, 3).
    """
    if config.architecture == "dlib_resnet":
        from . import dlib_resnet

        return dlib_resnet.build(config)
    if config.architecture == "cnn":
        from . import cnn

        return cnn.build(config)
    raise WeightsError(f"unknown architecture {config.architecture!r}", input_name="weights")


def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


class Encoder:
    """A loaded encoder: load once, embed many times (thread safe for inference).

    Loaded from a weights folder it runs without TensorFlow (`facesim.infer`: LiteRT or OpenCV on the folder's
    exported inference graph, or NumPy on the weights file; milliseconds to load); wrapped around a live
    Keras model (training, validation) it calls that model through one traced
    `tf.function`.
    """

    def __init__(self, config: ModelConfig, model=None, folder: Path | None = None, *, forward=None):
        self.config = config
        self.model = model
        self.folder = folder
        if forward is None:
            if model is None:
                raise ValueError("Encoder needs a Keras model or a forward function")
            forward = _keras_forward(config, model)
        self._forward = forward

    @classmethod
    def load(cls, folder: str | Path) -> Encoder:
        """Rebuild the encoder from `folder/config.json` and load its weights-only file.

        Raises:
            WeightsError: the folder, its config or its weights file is missing or invalid.
        """
        folder = Path(folder)
        if not folder.is_dir():
            raise WeightsError(f"weights folder {folder} does not exist", input_name="weights")
        config = ModelConfig.read(folder)
        encoder = cls.load_from(config, folder / config.weights_file)
        encoder.folder = folder
        log.info("loaded encoder from %s", folder)
        return encoder

    @classmethod
    def load_from(cls, config: ModelConfig, weights: str | Path, *, runtime: str = "auto") -> Encoder:
        """The architecture `config` describes with a weights-only file loaded into it.

        Args:
            runtime: "graph" runs `config.inference_file` (beside the weights file; through LiteRT or OpenCV,
                `facesim.dnn`), "numpy" the weights file itself; "auto" takes the graph when the config names one.
        """
        from .infer import GraphEncoder, NumpyEncoder

        weights = Path(weights)
        if not weights.is_file():
            raise WeightsError(f"{weights} is missing", input_name="weights")
        graph = weights.parent / config.inference_file if config.inference_file else None
        if runtime == "auto":
            runtime = "graph" if graph is not None else "numpy"
        if runtime == "numpy" and config.architecture != "cnn":
            raise WeightsError(f"{config.architecture} runs only through its exported graph: config.json names no "
                               f"inference file (python -m training.tflite --weights {weights.parent})",
                               input_name="weights")
        if runtime == "graph" and (graph is None or not graph.is_file()):
            raise WeightsError(f"{graph or 'the inference file'} is missing (python -m training.tflite --weights "
                               f"{weights.parent})", input_name="weights")
        source = graph if runtime == "graph" else weights
        try:
            forward = GraphEncoder(config, graph) if runtime == "graph" else NumpyEncoder(config, weights)
        except Exception as exc:  # noqa: BLE001 - h5py and cv2 raise many kinds for a bad or mismatched file
            raise WeightsError(f"cannot load {source}: {type(exc).__name__}: {exc}", input_name="weights") from None
        return cls(config, forward=forward)

    def keras_model(self):
        """The Keras model with these weights (built on demand; for training, export and checks)."""
        if self.model is None:
            if self.folder is None:
                raise ValueError("this encoder was not loaded from a folder")
            model = build_encoder(self.config)
            model.load_weights(self.folder / self.config.weights_file)
            self.model = model
        return self.model

    def embed_crops(self, crops: np.ndarray, *, batch_size: int = 64, flip: bool | None = None) -> np.ndarray:
        """Embed aligned face crops.

        Args:
            crops: uint8 array (N, crop_size, crop_size, 3), RGB: `Face.crop`s stacked.

        Returns:
            float32 array (N, embedding_dim) of unit vectors (flip test-time augmentation when the
            config asks for it, unless `flip` says otherwise).
        """
        crops = np.asarray(crops)
        if crops.ndim == 3:
            crops = crops[None]
        size, inp = self.config.crop_size, self.config.input_size
        if crops.shape[1:] != (size, size, 3):
            raise ValueError(f"crops must have shape (N, {size}, {size}, 3), got {crops.shape}")
        off = (size - inp) // 2
        x = crops[:, off : off + inp, off : off + inp, :].astype(np.float32)
        out = []
        for i in range(0, len(x), batch_size):
            batch = x[i : i + batch_size]
            if self.config.flip_tta if flip is None else flip:  # the image and its mirror in one call, summed
                both = np.asarray(self._forward(np.concatenate([batch, batch[:, :, ::-1, :]])))
                out.append(both[: len(batch)] + both[len(batch) :])
            else:
                out.append(np.asarray(self._forward(batch)))
        emb = np.concatenate(out) if out else np.zeros((0, self.config.embedding_dim), np.float32)
        return (emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)).astype(np.float32)


def _keras_forward(config: ModelConfig, model):
    import keras

    if keras.backend.backend() != "tensorflow":  # JAX / PyTorch: the model called directly
        return lambda x: keras.ops.convert_to_numpy(model(x, training=False))
    import tensorflow as tf

    @tf.autograph.experimental.do_not_convert
    def forward(x):
        return model(x, training=False)

    # Calling the model through one traced function costs a few ms; model.predict costs ~100 ms a call.
    traced = tf.function(
        forward,
        input_signature=[tf.TensorSpec((None, config.input_size, config.input_size, 3), tf.float32)],
        reduce_retracing=True,
    )
    return lambda x: traced(x).numpy()


@lru_cache(maxsize=4)
def _cached_encoder(folder: str) -> Encoder:
    return Encoder.load(folder)


_load_lock = threading.Lock()


def load_encoder(weights: str | Path | Encoder | None = None) -> Encoder:
    """The encoder for `weights` (a folder path, an Encoder, or None for the shipped weights), loaded once."""
    if isinstance(weights, Encoder):
        return weights
    if isinstance(weights, str) and weights.startswith("hf://"):
        from .hub import download_weights  # imported only here: the core library works offline

        weights = download_weights(weights)
    folder = str(Path(weights if weights is not None else DEFAULT_WEIGHTS).resolve())
    with _load_lock:
        return _cached_encoder(folder)
