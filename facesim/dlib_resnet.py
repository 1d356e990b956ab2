"""The ported dlib ResNet (Davis King's public-domain face encoder): its chip, its normalisation, its network.

dlib's `dnn_face_recognition_ex.cpp` network, rebuilt layer for layer in Keras 3 (the weights come from
`python -m training.dlib_port`, which reads dlib's `.dat` file): 150x150 RGB chips, a 7x7/2 convolution,
a 3x3/2 max pool, 14 residual blocks at 32, 64, 128 and 256 filters (four of them downsampling), global
average pooling and a 128-d projection without bias; 5.6 M parameters. Descriptors are compared by
Euclidean distance, unnormalised (dlib's 0.6 threshold is on these raw vectors); FaceSim keeps them so.

Two details decide faithfulness (a port that gets either wrong agrees with dlib only to cosine 0.92-0.98):
- dlib pads stride-1 convolutions by k/2 and pads nothing for stride 2 (convolutions and pools alike);
- a downsampling block adds a 2x2 average pool of its input to its strided branch, and where the two
  differ in size dlib zero-extends the smaller one at the END of the channel axis and at the bottom/right
  of the image (at 150 px this happens twice: 3 vs 4 and 1 vs 2 pixels). Here the pool and the channel
  extension are one fixed 2x2/2 convolution, and the spatial extension a ZeroPadding2D.

dlib's `affine_` layers (its test-time batch norm: y = gamma * x + beta) are an `Affine` layer here, kept
separate from the convolution so that fine-tuning sees the same parameterisation dlib trained.
"""

from __future__ import annotations

import numpy as np

__all__ = ["ARCHITECTURE", "CHIP_SIZE", "TEMPLATE", "MEAN_RGB", "INPUT_SCALE", "STAGES", "build", "affine_layer"]

ARCHITECTURE = "dlib_resnet"
#: dlib's chip side (`get_face_chip(..., size=150, padding=0.25)`).
CHIP_SIZE = 150
#: Where BlazeFace's right eye, left eye, nose tip and mouth centre fall on dlib's own 150 px chip, as
#: fractions of its side (median over 400 LFW training images of dlib's chips; docs/accuracy.md). Our chip
#: is the least-squares similarity that puts the four keypoints there (`facesim.align`, fit "lmeds").
TEMPLATE = np.array([
    [46.65, 46.00],   # right eye (image left)
    [101.76, 46.86],  # left eye
    [73.62, 79.87],   # nose tip
    [73.83, 107.50],  # mouth centre
], np.float64) / CHIP_SIZE
#: dlib's input normalisation: (pixel - mean) / 256, per R, G, B channel.
MEAN_RGB = (122.782, 117.001, 104.298)
INPUT_SCALE = 1.0 / 256.0
#: (filters, blocks, first block downsamples) per stage, input side first: dlib's alevel4 ... alevel0.
STAGES = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


def _layers():
    import keras

    @keras.saving.register_keras_serializable(package="facesim")
    class Affine(keras.layers.Layer):
        """Per-channel y = gamma * x + beta (dlib's `affine_`: batch norm with its statistics folded in)."""

        def build(self, input_shape):
            c = int(input_shape[-1])
            self.gamma = self.add_weight(shape=(c,), initializer="ones", name="gamma")
            self.beta = self.add_weight(shape=(c,), initializer="zeros", name="beta")

        def call(self, x):
            return x * self.gamma + self.beta

    return Affine


_affine_cls = None


def affine_layer(name: str):
    """A new `Affine` layer (the class is defined on first use: importing this module needs no Keras)."""
    global _affine_cls
    if _affine_cls is None:
        _affine_cls = _layers()
    return _affine_cls(name=name)


def build(config=None, *, fold_affine: bool = False):
    """The network as Keras 3 layers, fresh (load the ported or fine-tuned weights into it).

    Args:
        config: the `ModelConfig` (only `embedding_dim` is read; 128 for dlib's weights).
        fold_affine: build the inference form (each `Affine` folded into its convolution, and the input
            normalisation into the first, unpadded one: what `training.tflite` exports, since OpenCV's
            importer cannot broadcast the per-channel mean); the training form keeps them apart.

    Returns:
        keras.Model mapping float32 RGB (N, 150, 150, 3) in [0, 255] to raw (N, embedding_dim) descriptors
        (not L2-normalised, as dlib's).
    """
    import keras
    from keras import layers

    dim = 128 if config is None else config.embedding_dim

    def conv_bn(x, filters, kernel, stride, name):
        x = layers.Conv2D(filters, kernel, strides=stride, padding="same" if stride == 1 else "valid",
                          use_bias=True, name=f"{name}_conv")(x)
        return x if fold_affine else affine_layer(f"{name}_affine")(x)

    inputs = keras.Input((CHIP_SIZE, CHIP_SIZE, 3), name="chip")
    # Kept as a layer of its own: folded into the first convolution it multiplies that layer's gradients
    # by several hundred and fine-tuning diverges.
    x = inputs if fold_affine else layers.Normalization(mean=list(MEAN_RGB), variance=[(1 / INPUT_SCALE) ** 2] * 3,
                                                        name="normalize")(inputs)
    x = conv_bn(x, 32, 7, 2, "stem")
    x = layers.ReLU(name="stem_relu")(x)
    x = layers.MaxPooling2D(3, strides=2, padding="valid", name="stem_pool")(x)
    for s, (filters, blocks, down) in enumerate(STAGES):
        for b in range(blocks):
            name = f"s{s}b{b}"
            stride = 2 if down and b == 0 else 1
            y = conv_bn(x, filters, 3, stride, f"{name}a")
            y = layers.ReLU(name=f"{name}a_relu")(y)
            y = conv_bn(y, filters, 3, 1, f"{name}b")
            if stride == 1:
                shortcut = x
            else:
                # dlib: avg_pool<2,2,2,2> of the input, zero-extended to `filters` channels (at the end).
                shortcut = layers.Conv2D(filters, 2, strides=2, padding="valid", use_bias=False, trainable=False,
                                         name=f"{name}_shortcut")(x)
                short_side, side = int(shortcut.shape[1]), int(y.shape[1])
                if side < short_side:  # dlib zero-extends the smaller tensor at the bottom and right
                    y = layers.ZeroPadding2D(((0, short_side - side), (0, short_side - side)), name=f"{name}_extend")(y)
            x = layers.Add(name=f"{name}_add")([y, shortcut])
            x = layers.ReLU(name=f"{name}_relu")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    outputs = layers.Dense(dim, use_bias=False, name="project", dtype="float32")(x)
    model = keras.Model(inputs, outputs, name="dlib_resnet")
    _set_pool_kernels(model)
    return model


def _set_pool_kernels(model) -> None:
    """The fixed shortcut kernels: a 2x2 average of each input channel into the same output channel."""
    for layer in model.layers:
        if layer.name.endswith("_shortcut"):
            kernel = np.zeros(layer.kernel.shape, np.float32)
            cin = kernel.shape[2]
            kernel[:, :, np.arange(cin), np.arange(cin)] = 0.25
            layer.set_weights([kernel])


def computational_layers(model) -> list:
    """The layers that carry dlib's parameters, in dlib's order (input first): convolutions, affines, fc."""
    return [layer for layer in model.layers
            if layer.name.endswith(("_conv", "_affine")) or layer.name == "project"]
