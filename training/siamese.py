"""Training scaffolding around the encoder: the triplet Siamese network, its losses, and online mining.

Backend-agnostic Keras 3 (`keras.ops` only): the same code trains on TensorFlow here and on JAX or
PyTorch on a GPU (`KERAS_BACKEND=jax python -m training.train ...`).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


class DistanceLayer(keras.layers.Layer):
    """Euclidean distances d(anchor, positive) and d(anchor, negative) between embeddings."""

    def call(self, anchor, positive, negative):
        d_ap = ops.sqrt(ops.maximum(ops.sum(ops.square(anchor - positive), axis=-1), 1e-12))
        d_an = ops.sqrt(ops.maximum(ops.sum(ops.square(anchor - negative), axis=-1), 1e-12))
        return d_ap, d_an


def build_siamese(encoder: keras.Model) -> keras.Model:
    """Three inputs (anchor, positive, negative) through one shared encoder, out come (d_ap, d_an)."""
    shape = encoder.input_shape[1:]
    a = keras.Input(shape, name="anchor")
    p = keras.Input(shape, name="positive")
    n = keras.Input(shape, name="negative")
    d_ap, d_an = DistanceLayer(name="distance")(encoder(a), encoder(p), encoder(n))
    return keras.Model([a, p, n], [d_ap, d_an], name="siamese")


def triplet_loss(d_ap, d_an, margin: float, valid=None):
    """Mean hinge max(d_ap - d_an + margin, 0) over triplets (FaceNet's loss on plain distances).

    `valid` (bool, optional) keeps only the rows that are real triplets (anchors with a positive).
    """
    hinge = ops.relu(d_ap - d_an + margin)
    return ops.mean(hinge) if valid is None else masked_mean(hinge, valid)


def pairwise_distances(emb):
    """(N, N) Euclidean distances between rows of `emb`."""
    sq = ops.sum(ops.square(emb), axis=1)
    d2 = sq[:, None] - 2.0 * ops.matmul(emb, ops.transpose(emb)) + sq[None, :]
    return ops.sqrt(ops.maximum(d2, 1e-12))


def batch_hard_triplets(emb, labels):
    """Online mining: for every row, its hardest positive and hardest negative in the batch.

    Shapes stay fixed (no boolean indexing), so the step compiles on every Keras backend.

    Returns:
        (valid, positive_idx, negative_idx): `valid` marks the rows that have a positive (a person with
        2+ images in the batch); only those are anchors.
    """
    dist = ops.stop_gradient(pairwise_distances(emb))
    same = ops.equal(labels[:, None], labels[None, :])
    pos_mask = ops.logical_and(same, ops.logical_not(ops.eye(ops.shape(labels)[0], dtype="bool")))
    valid = ops.any(pos_mask, axis=1)
    hardest_pos = ops.argmax(ops.where(pos_mask, dist, -1.0), axis=1)
    hardest_neg = ops.argmin(ops.where(same, 1e9, dist), axis=1)
    return valid, hardest_pos, hardest_neg


def masked_mean(values, mask):
    mask = ops.cast(mask, values.dtype)
    return ops.sum(values * mask) / ops.maximum(ops.sum(mask), 1.0)


class CosFaceHead(keras.layers.Layer):
    """Auxiliary large-margin cosine softmax over training identities (CosFace); never shipped."""

    def __init__(self, n_classes: int, scale: float = 30.0, margin: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.n_classes, self.scale, self.margin = n_classes, scale, margin

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.n_classes), initializer="glorot_uniform",
                                 name="class_centres")

    def call(self, emb, labels):
        w = self.w / ops.maximum(ops.sqrt(ops.sum(ops.square(self.w), axis=0, keepdims=True)), 1e-12)
        cos = ops.matmul(ops.cast(emb, "float32"), w)
        logits = self.scale * (cos - self.margin * ops.one_hot(labels, self.n_classes))
        return ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))


def distillation_loss(student, teacher, form: str = "l2"):
    """How far the student's unit embeddings are from the teacher's (rows paired).

    "l2": mean squared distance between paired unit vectors (matching the teacher's space itself);
    "relational": mean squared difference of the two batches' cosine-similarity matrices (matching only
    how faces relate to each other, so the student keeps its own axes).
    """
    if form == "l2":
        return ops.mean(ops.sum(ops.square(student - teacher), axis=1))
    if form == "relational":
        return ops.mean(ops.square(ops.matmul(student, ops.transpose(student))
                                   - ops.matmul(teacher, ops.transpose(teacher))))
    raise ValueError(f"unknown distillation form {form!r}")


class TripletTrainer(keras.Model):
    """The triplet Siamese network as a trainable model: one shared encoder, the losses in `compute_loss`.

    A batch is `x` (the images) and `y = {"labels", "teacher"}`. With batch-hard mining the first
    `len(labels)` rows are P people x K images (+ singletons) and any further rows are unlabelled faces that
    take part in distillation only; with random mining the labelled rows are anchors, positives and
    negatives in thirds. Everything is `keras.ops`: the same step runs on TensorFlow, JAX or PyTorch.
    """

    def __init__(self, encoder: keras.Model, *, mining: str = "batch-hard", margin: float = 0.3,
                 distill_weight: float = 0.0, distill_form: str = "l2", cosface: CosFaceHead | None = None,
                 cosface_weight: float = 0.0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.distance = DistanceLayer(dtype="float32")
        self.mining, self.margin = mining, margin
        self.distill_weight, self.distill_form = distill_weight, distill_form
        self.cosface, self.cosface_weight = cosface, cosface_weight
        self.trackers = {k: keras.metrics.Mean(name=k) for k in ("triplet_loss", "total_loss", "active")}

    def build(self, input_shape):
        if self.cosface is not None and not self.cosface.built:
            self.cosface.build((None, self.encoder.output_shape[-1]))
        self.built = True

    def call(self, x, training=False):
        return self.encoder(x, training=training)

    @property
    def metrics(self):
        return list(self.trackers.values())

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        labels, teacher = y["labels"], y["teacher"]
        emb_all = ops.cast(y_pred, "float32")
        n = ops.shape(labels)[0]
        emb = emb_all[:n]  # unlabelled extra rows take part in distillation only
        if self.mining == "batch-hard":
            valid, pos, neg = batch_hard_triplets(emb, labels)
            d_ap, d_an = self.distance(emb, ops.take(emb, pos, axis=0), ops.take(emb, neg, axis=0))
        else:
            third = n // 3
            valid = ops.ones((third,), "bool")
            d_ap, d_an = self.distance(emb[:third], emb[third : 2 * third], emb[2 * third : 3 * third])
        loss = triplet_loss(d_ap, d_an, self.margin, valid)
        total = loss
        if self.cosface is not None and self.cosface_weight > 0:
            total = total + self.cosface_weight * self.cosface(emb, labels)
        if self.distill_weight > 0:
            total = total + self.distill_weight * distillation_loss(emb_all, teacher, self.distill_form)
        self.trackers["triplet_loss"].update_state(loss)
        self.trackers["total_loss"].update_state(total)
        self.trackers["active"].update_state(masked_mean(ops.cast(d_ap - d_an + self.margin > 0, "float32"), valid))
        return total


def random_triplets(labels: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) index triplets (anchor, positive, negative): anchor and positive share a label, negative does not.

    Only labels with at least two images serve as anchors; any other image may be a negative.
    """
    by_label: dict[int, np.ndarray] = {}
    for lab in np.unique(labels):
        by_label[int(lab)] = np.flatnonzero(labels == lab)
    multi = [lab for lab, idx in by_label.items() if len(idx) >= 2]
    if not multi or len(by_label) < 2:
        raise ValueError("triplets need a person with two images and at least two people")
    out = np.empty((n, 3), dtype=np.int64)
    for k in range(n):
        lab = multi[rng.integers(len(multi))]
        a, p = rng.choice(by_label[lab], size=2, replace=False)
        while True:
            neg = int(rng.integers(len(labels)))
            if labels[neg] != lab:
                break
        out[k] = (a, p, neg)
    return out
