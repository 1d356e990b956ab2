"""The training loop's parts for `keras.Model.fit`: seeded batches (a PyDataset) and validation checkpoints.

Backend-agnostic Keras 3: nothing here imports TensorFlow, so `training.train` runs unchanged on JAX or
PyTorch (`KERAS_BACKEND=jax`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import keras
import numpy as np
from keras import ops

from .progress import progress_bar

log = logging.getLogger("training.train")


class TripletBatches(keras.utils.PyDataset):
    """`n` augmented batches from `make(rng)`, prepared by a worker thread while the model trains.

    Batch i comes from its own generator seeded with (seed, i): a run is reproducible whatever order
    workers finish in. One worker by default: two measured 45% slower on 2 cores (86 against 137-149
    images/s), competing with the training step for them.
    """

    def __init__(self, make, seed: int, n: int, workers: int = 1):
        super().__init__(workers=workers, use_multiprocessing=False, max_queue_size=4)
        self.make, self.seed, self.n = make, seed, n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        b = self.make(np.random.default_rng([self.seed, i]))
        return b["x"], {"labels": b["labels"], "teacher": b["teacher"]}


class ValidationCheckpoint(keras.callbacks.Callback):
    """Every `every` steps: validation accuracy; the weights are saved whenever it beats the best so far.

    With `ema` > 0 it keeps an exponential moving average of the encoder's trainable weights (momentum `ema`)
    and validates and saves that average instead of the raw weights.
    """

    def __init__(self, runner, encoder, path: Path, val_set, val_pairs, wild_val=None, *, every: int, steps: int,
                 batch: int, ema: float = 0.0):
        super().__init__()
        self.runner, self.encoder, self.path = runner, encoder, Path(path)
        self.val = (val_set, val_pairs, wild_val)
        self.every, self.steps, self.batch, self.ema = every, steps, batch, ema
        self.history: list[dict] = []
        self.best = {"val_accuracy": -1.0, "step": 0}
        self._average = None
        self._bar = None

    def baseline(self) -> None:
        """Validate and save the starting weights as step 0 (fine-tuning): training must beat them to be kept."""
        self._t0 = time.time()
        acc, thr, parts = validate(self.runner, *self.val)
        self.best = {"val_accuracy": acc, "step": 0}
        tmp = self.path.with_name(self.path.name + ".tmp.weights.h5")
        self.encoder.save_weights(tmp)
        tmp.replace(self.path)
        self.history.append({"step": 0, "triplet_loss": float("nan"), "total_loss": float("nan"),
                             "active_triplets": float("nan"), "val_accuracy": acc, "val_threshold": thr, **parts,
                             "seconds": 0.0})
        log.info("step 0 (the starting weights): val acc %.4f (%s)", acc,
                 ", ".join(f"{k} {v:.4f}" for k, v in parts.items()))

    def on_train_begin(self, logs=None):
        self._t0 = time.time()
        self._bar = progress_bar(self.steps, "training steps")
        if self.ema:
            self._average = [keras.Variable(ops.convert_to_numpy(v.value), trainable=False)  # a copy, not an alias
                             for v in self.encoder.trainable_variables]

    def on_train_batch_end(self, batch, logs=None):
        step = batch + 1
        self._bar.update(1)
        checkpoint = step % self.every == 0 or step == self.steps
        if self._average is not None or checkpoint:
            _ = self.model  # on JAX this attaches the current weights to the variables (no-op elsewhere)
        if self._average is not None:
            m = self.ema
            for avg, v in zip(self._average, self.encoder.trainable_variables):
                avg.assign(avg * m + v.value * (1.0 - m))
        if checkpoint:
            self._checkpoint(step, logs or {})

    def on_train_end(self, logs=None):
        self._bar.close()

    def _checkpoint(self, step: int, logs: dict) -> None:
        raw = None
        if self._average is not None:  # validate (and save) the average, then put the raw weights back
            raw = [ops.convert_to_numpy(v.value) for v in self.encoder.trainable_variables]
            for avg, v in zip(self._average, self.encoder.trainable_variables):
                v.assign(avg.value)
        acc, thr, parts = validate(self.runner, *self.val)
        improved = acc > self.best["val_accuracy"]
        if improved:
            self.best = {"val_accuracy": acc, "step": step}
            tmp = self.path.with_name(self.path.name + ".tmp.weights.h5")
            self.encoder.save_weights(tmp)
            tmp.replace(self.path)
        if raw is not None:
            for value, v in zip(raw, self.encoder.trainable_variables):
                v.assign(value)
        rate = step * self.batch / (time.time() - self._t0)
        loss = {k: float(logs.get(k, np.nan)) for k in ("triplet_loss", "total_loss", "active")}
        for metric in self.model.metrics:  # the logged losses are means over each interval
            metric.reset_state()
        self.history.append({"step": step, "triplet_loss": loss["triplet_loss"], "total_loss": loss["total_loss"],
                             "active_triplets": loss["active"], "val_accuracy": acc, "val_threshold": thr, **parts,
                             "seconds": round(time.time() - self._t0, 1)})
        log.info("step %d/%d  loss %.4f  total %.4f  active %.2f  val acc %.4f%s (%s)  (%.0f img/s)", step,
                 self.steps, loss["triplet_loss"], loss["total_loss"], loss["active"], acc, " *" if improved else "",
                 ", ".join(f"{k} {v:.4f}" for k, v in parts.items()), rate)


def validate(runner, faces, pairs, wild=None) -> tuple[float, float, dict]:
    """Validation accuracy at the best threshold over LFW fold 7 and (if given) the wild pairs together.

    A wild pair with a photo where no face was found counts as wrong, as PROTOCOL.md B scores it.

    Returns:
        (accuracy, threshold, {"lfw_val": fold-7 accuracy, "wild_val": wild accuracy} at that threshold).
    """
    from .metrics import best_threshold

    emb = runner.embed_crops(faces.crops)
    a, b, same = pairs
    d = np.linalg.norm(emb[a] - emb[b], axis=1)
    if wild is None:
        thr, acc = best_threshold(d, same)
        return acc, thr, {"lfw_val": acc}
    crops, found, (wa, wb, wsame) = wild
    wemb = runner.embed_crops(crops)
    wd = np.where(found[wa] & found[wb], np.linalg.norm(wemb[wa] - wemb[wb], axis=1), np.inf)
    thr, acc = best_threshold(np.concatenate([d, wd]), np.concatenate([same, wsame]))
    return acc, thr, {"lfw_val": float(np.mean((d <= thr) == same)), "wild_val": float(np.mean((wd <= thr) == wsame))}


