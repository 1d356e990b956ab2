"""OpenCV DNN networks (the face detectors, the exported encoder): read once, lent to one caller at a time."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import cv2

_lock = threading.Lock()
_free: dict[tuple, list[cv2.dnn.Net]] = {}


@contextmanager
def lent_net(path: str) -> Iterator[cv2.dnn.Net]:
    """The network in the TFLite file `path`, for the caller alone until the `with` block ends.

    A cv2.dnn.Net keeps its buffers between calls and is not safe to share, so each concurrent caller gets its
    own; they are kept in a free list and lent again, so the number read is the most ever used at once
    (for the app: the requests computed at once), not one per thread: a web server runs handlers on dozens
    of threads, and one copy of the 23 MB encoder with its buffers per thread took the server to 1 GB under
    load. A file rewritten since (a new export at the same path) is read again.
    """
    stat = os.stat(path)
    key = (path, stat.st_mtime_ns, stat.st_size)
    with _lock:
        free = _free.setdefault(key, [])
        net = free.pop() if free else None
    if net is None:
        net = cv2.dnn.readNetFromTFLite(path)
    try:
        yield net
    finally:
        with _lock:
            _free.setdefault(key, []).append(net)

