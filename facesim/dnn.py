"""TFLite models (the face detectors, the exported encoder): read once, lent to one caller at a time, run by
LiteRT (XNNPACK) or, where LiteRT is not installed, by OpenCV's DNN module.

Measured on the 2-core machine (docs/benchmarks.md): LiteRT runs the full-range BlazeFace in 1.5 ms and three
150 px faces through the ResNet in 4.9 ms, where OpenCV's DNN module takes 5.8 and 13.6 ms; both give the
same outputs (tests/test_speed_paths.py, tests/test_model.py). `FACESIM_RUNTIME=opencv` forces OpenCV.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from functools import lru_cache

import numpy as np

__all__ = ["lent_model", "lent_net", "runtime", "RUNTIMES"]

RUNTIMES = ("litert", "opencv")
#: Threads each LiteRT interpreter uses (the machine's two cores; requests run in parallel besides).
THREADS = 2

_lock = threading.Lock()
_free: dict[tuple, list] = {}


@lru_cache(maxsize=1)
def runtime() -> str:
    """"litert" when LiteRT imports (and FACESIM_RUNTIME does not say "opencv"), else "opencv"."""
    wanted = os.environ.get("FACESIM_RUNTIME", "").strip().lower()
    if wanted == "opencv":
        return "opencv"
    try:
        import ai_edge_litert.interpreter  # noqa: F401
    except ImportError:
        if wanted == "litert":
            raise
        return "opencv"
    return "litert"


class _LiteRT:
    """One LiteRT interpreter; inputs NHWC float32, outputs in the model's order."""

    def __init__(self, path: str):
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=path, num_threads=THREADS)
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.outputs = [o["index"] for o in self.interpreter.get_output_details()]
        with _quiet_stderr():  # the first plan prints "INFO: Created TensorFlow Lite XNNPACK delegate" to fd 2
            self.interpreter.allocate_tensors()
        self.shape = tuple(self.interpreter.get_input_details()[0]["shape"])

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, np.float32)
        if x.shape != self.shape:  # a batch of another size: reshape the input and plan again (microseconds)
            self.interpreter.resize_tensor_input(self.input, list(x.shape))
            self.interpreter.allocate_tensors()
            self.shape = x.shape
        self.interpreter.set_tensor(self.input, x)
        self.interpreter.invoke()
        return [self.interpreter.get_tensor(i) for i in self.outputs]


@contextmanager
def _quiet_stderr() -> Iterator[None]:
    """File descriptor 2 sent to /dev/null for the block (LiteRT's C++ logging has no switch of its own)."""
    import sys

    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (an embedded interpreter, a test runner)
        yield
        return
    saved, null = os.dup(fd), os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, fd)
    try:
        yield
    finally:
        os.dup2(saved, fd)
        os.close(saved)
        os.close(null)


class _OpenCV:
    """One cv2.dnn network read from the TFLite file; inputs NHWC float32 (transposed to OpenCV's NCHW)."""

    def __init__(self, path: str):
        import cv2

        self.net = cv2.dnn.readNetFromTFLite(path)
        self.names = self.net.getUnconnectedOutLayersNames()

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        self.net.setInput(np.ascontiguousarray(np.asarray(x, np.float32).transpose(0, 3, 1, 2)))
        return list(self.net.forward(self.names))


@contextmanager
def lent_model(path: str, kind: str | None = None) -> Iterator:
    """The model in the TFLite file `path`, for the caller alone until the `with` block ends.

    The object has `run(x)`: x is a float32 NHWC batch, the result the model's outputs as arrays. A model
    keeps its buffers between calls and is not safe to share, so each concurrent caller gets its own; they
    are kept in a free list and lent again, so the number read is the most ever used at once (for the app:
    the requests computed at once), not one per thread: a web server runs handlers on dozens of threads, and
    one copy of the encoder per thread took the server to 1 GB under load. A file rewritten since (a new
    export at the same path) is read again.

    Args:
        kind: "litert" or "opencv" (default: `runtime()`).
    """
    kind = kind or runtime()
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size, kind)
    with _lock:
        free = _free.setdefault(key, [])
        model = free.pop() if free else None
    if model is None:
        model = _LiteRT(path) if kind == "litert" else _OpenCV(path)
    try:
        yield model
    finally:
        with _lock:
            _free.setdefault(key, []).append(model)


@contextmanager
def lent_net(path: str) -> Iterator:
    """An OpenCV `cv2.dnn.Net` of the TFLite file `path`, lent as `lent_model` lends (training tools that drive
    OpenCV's API themselves: the face-mesh comparison, the teacher's graph)."""
    with lent_model(path, "opencv") as model:
        yield model.net
