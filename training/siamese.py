"""Training scaffolding around the encoder: the triplet Siamese network, its losses, and online mining."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf
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


def triplet_loss(d_ap, d_an, margin: float):
    """Mean hinge max(d_ap - d_an + margin, 0) over triplets (FaceNet's loss on plain distances)."""
    return ops.mean(ops.relu(d_ap - d_an + margin))


def pairwise_distances(emb):
    """(N, N) Euclidean distances between rows of `emb`."""
    sq = tf.reduce_sum(tf.square(emb), axis=1)
    d2 = sq[:, None] - 2.0 * tf.matmul(emb, emb, transpose_b=True) + sq[None, :]
    return tf.sqrt(tf.maximum(d2, 1e-12))


def batch_hard_indices(emb, labels):
    """Online mining: for each anchor with a positive in the batch, its hardest positive and negative.

    Returns:
        (anchor_idx, positive_idx, negative_idx): int32 vectors, one entry per usable anchor.
    """
    dist = tf.stop_gradient(pairwise_distances(emb))
    same = tf.equal(labels[:, None], labels[None, :])
    eye = tf.eye(tf.shape(labels)[0], dtype=tf.bool)
    pos_mask = tf.logical_and(same, tf.logical_not(eye))
    has_pos = tf.reduce_any(pos_mask, axis=1)
    hardest_pos = tf.argmax(tf.where(pos_mask, dist, -1.0), axis=1, output_type=tf.int32)
    hardest_neg = tf.argmin(tf.where(same, 1e9, dist), axis=1, output_type=tf.int32)
    anchors = tf.cast(tf.where(has_pos)[:, 0], tf.int32)
    return anchors, tf.gather(hardest_pos, anchors), tf.gather(hardest_neg, anchors)


class CosFaceHead(keras.layers.Layer):
    """Auxiliary large-margin cosine softmax over training identities (CosFace); never shipped."""

    def __init__(self, n_classes: int, scale: float = 30.0, margin: float = 0.2, **kwargs):
        super().__init__(**kwargs)
        self.n_classes, self.scale, self.margin = n_classes, scale, margin

    def build(self, input_shape):
        self.w = self.add_weight(shape=(input_shape[-1], self.n_classes), initializer="glorot_uniform",
                                 name="class_centres")

    def call(self, emb, labels):
        w = tf.math.l2_normalize(tf.cast(self.w, tf.float32), axis=0)
        cos = tf.matmul(tf.cast(emb, tf.float32), w)
        logits = self.scale * (cos - self.margin * tf.one_hot(labels, self.n_classes))
        return tf.reduce_mean(tf.nn.sparse_softmax_cross_entropy_with_logits(labels=labels, logits=logits))


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
