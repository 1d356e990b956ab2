"""The encoder's forward pass without TensorFlow: the exported TFLite graph (LiteRT, or OpenCV), or NumPy.

The app and the library embed faces with these; training builds the architecture in Keras
(`facesim.model.build_encoder`), and tests check that all of them give the same embeddings. Importing
TensorFlow costs seconds at start-up and ~0.5 GB of memory; these cost milliseconds.

- `GraphEncoder` runs `encoder.tflite` (written by `python -m training.tflite` from the weights file:
  batch norm folded, the dense projection as a convolution so that any batch size runs) through the same
  runtime as the face detector (`facesim.dnn`: LiteRT, or OpenCV's DNN module where LiteRT is missing).
- `NumpyEncoder` reads the Keras weights file itself: the fallback for a folder without the TFLite file.
"""

from __future__ import annotations

import threading
from functools import lru_cache
from pathlib import Path

import numpy as np

from .dnn import lent_model

__all__ = ["NumpyEncoder", "GraphEncoder"]

#: Keras' BatchNormalization default epsilon.
BN_EPSILON = 1e-3


class NumpyEncoder:
    """`build_encoder(config)` evaluated in inference mode, with weights read from its `.weights.h5` file.

    Batch norm is folded into the preceding convolution (scale and shift), so each stage is a matrix
    product and a ReLU.
    """

    def __init__(self, config, weights: str | Path):
        import h5py

        self.config = config
        by_name: dict[str, list[np.ndarray]] = {}
        with h5py.File(weights, "r") as f:
            def visit(name, obj):
                if isinstance(obj, h5py.Group) and name.endswith("/vars") and "name" in obj.attrs:
                    by_name[str(obj.attrs["name"])] = [np.asarray(obj[k], np.float32)
                                                      for k in sorted(obj.keys(), key=int)]
            f.visititems(visit)
        self.convs = []
        channels = 3
        for i, width in enumerate(config.widths):
            for j, stride in enumerate((1, 2)):
                (kernel,) = by_name[f"stage{i}_conv{j}"]
                scale, shift = _bn(by_name[f"stage{i}_bn{j}"])
                if kernel.shape != (3, 3, channels, width):
                    raise ValueError(f"stage{i}_conv{j} has shape {kernel.shape}, config says (3, 3, {channels}, {width})")
                channels = width
                self.convs.append((np.ascontiguousarray(kernel * scale), shift, stride))  # (3, 3, in, out)
        kernel, bias = by_name["project"]
        side = 1 if config.head == "gap" else config.input_size // 2 ** len(config.widths)
        if kernel.shape != (side * side * channels, config.embedding_dim):
            raise ValueError(f"project has shape {kernel.shape}, config says "
                             f"({side * side * channels}, {config.embedding_dim})")
        self.pool = config.head == "gap"
        scale, shift = _bn(by_name["project_bn"])
        self.dense = (kernel * scale, bias * scale + shift)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Embeddings (N, embedding_dim), unit length, of float32 images (N, input, input, 3) in [0, 255]."""
        with _one_blas_thread():
            x = np.asarray(x, np.float32) / 127.5 - 1.0
            for kernel, shift, stride in self.convs:
                x = np.maximum(_conv3x3(x, kernel, stride) + shift, 0.0)
            x = (x.mean(axis=(1, 2)) if self.pool else x.reshape(len(x), -1)) @ self.dense[0] + self.dense[1]
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class GraphEncoder:
    """The exported inference graph (`encoder.tflite`) run by `facesim.dnn` (LiteRT, or OpenCV's DNN module);
    one interpreter per concurrent call.

    Args:
        runtime: "litert" or "opencv" (default: `facesim.dnn.runtime()`).
    """

    def __init__(self, config, path: str | Path, *, runtime: str | None = None):
        self.config = config
        self.path = str(path)
        self.runtime = runtime
        # Run once now, so that a bad file fails at load time with its reason.
        out = self(np.zeros((1, config.input_size, config.input_size, 3), np.float32), normalise=False)
        if out.size != config.embedding_dim:
            raise ValueError(f"{Path(path).name} gives {out.size} outputs, config says {config.embedding_dim}")

    def __call__(self, x: np.ndarray, *, normalise: bool = True) -> np.ndarray:
        """Embeddings (N, embedding_dim), unit length, of float32 images (N, input, input, 3) in [0, 255]."""
        with lent_model(self.path, self.runtime) as model:
            out = model.run(np.asarray(x, np.float32))[0].reshape(len(x), -1)
        if not normalise:
            return out
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)


_blas_lock = threading.Lock()
_blas_users = 0
_blas_limiter = None


@lru_cache(maxsize=1)
def _controller():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


class _one_blas_thread:
    """BLAS limited to one thread while any forward pass runs.

    The matrices here are small: OpenBLAS's own threads then cost more than they give (measured: 10x slower
    with both cores busy), and the app already runs requests and photos in parallel threads. The previous
    limit comes back when the last concurrent forward pass ends.
    """

    def __enter__(self):
        global _blas_users, _blas_limiter
        with _blas_lock:
            if _blas_users == 0:
                _blas_limiter = _controller().limit(limits=1, user_api="blas")
            _blas_users += 1

    def __exit__(self, *exc):
        global _blas_users
        with _blas_lock:
            _blas_users -= 1
            if _blas_users == 0:
                _blas_limiter.restore_original_limits()


def _bn(v: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    gamma, beta, mean, var = v
    scale = gamma / np.sqrt(var + BN_EPSILON)
    return scale, beta - mean * scale


def _conv3x3(x: np.ndarray, kernel: np.ndarray, stride: int) -> np.ndarray:
    """3x3 convolution with Keras' "same" padding (for stride 2 on even sizes: one extra row/column after).

    Nine matrix products, one per kernel tap, over shifted views of the padded input.
    """
    n, h, w, c = x.shape
    out_h, out_w = -(-h // stride), -(-w // stride)
    pad_h = max((out_h - 1) * stride + 3 - h, 0)
    pad_w = max((out_w - 1) * stride + 3 - w, 0)
    x = np.pad(x, ((0, 0), (pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2), (0, 0)))
    out = np.zeros((n * out_h * out_w, kernel.shape[-1]), np.float32)
    for dy in range(3):
        for dx in range(3):
            tap = x[:, dy : dy + stride * out_h : stride, dx : dx + stride * out_w : stride, :]
            out += np.ascontiguousarray(tap).reshape(-1, c) @ kernel[dy, dx]
    return out.reshape(n, out_h, out_w, -1)
