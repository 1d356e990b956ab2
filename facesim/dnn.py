"""OpenCV DNN networks (the face detectors, the exported encoder): read once per thread and model file."""

from __future__ import annotations

import os
import threading

import cv2

_local = threading.local()


def thread_net(path: str) -> cv2.dnn.Net:
    """The network in the TFLite file `path` for the calling thread.

    A cv2.dnn.Net keeps its buffers between calls and is not safe to share between threads, so each thread
    reads its own copy once and keeps it; a file rewritten since (a new export at the same path) is read again.
    """
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    nets = _local.__dict__.setdefault("nets", {})
    if key not in nets:
        nets[key] = cv2.dnn.readNetFromTFLite(path)
    return nets[key]
