"""The small CNN trained here from scratch (FaceSim's first encoder): its chip and its network.

Kept as a training option (`python -m training.train`) and as the architecture of older weights folders;
the shipped encoder is the ported dlib ResNet (`facesim.dlib_resnet`).
"""

from __future__ import annotations

from .align import CROP_SIZE, TEMPLATE

__all__ = ["ARCHITECTURE", "CROP_SIZE", "TEMPLATE", "build"]

ARCHITECTURE = "cnn"


def build(config):
    """The network described by `config` (fresh, untrained weights).

    A plain strided CNN: per stage two 3x3 convolutions (the second with stride 2), batch norm and ReLU;
    then flatten (or global average pooling, `head="gap"`), dropout, a dense projection and L2
    normalisation. Inputs are RGB in [0, 255] of shape (input_size, input_size, 3): the centre of the
    `crop_size` chip; outputs are unit vectors of `embedding_dim` float32.
    """
    import keras
    from keras import layers

    inputs = keras.Input((config.input_size, config.input_size, 3), name="face")
    x = layers.Rescaling(1.0 / 127.5, offset=-1.0, name="rescale")(inputs)
    for i, width in enumerate(config.widths):
        for j, stride in enumerate((1, 2)):
            x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False,
                              name=f"stage{i}_conv{j}")(x)
            x = layers.BatchNormalization(name=f"stage{i}_bn{j}")(x)
            x = layers.ReLU(name=f"stage{i}_relu{j}")(x)
    if config.head == "gap":
        x = layers.GlobalAveragePooling2D(name="pool")(x)
    else:
        x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(config.dropout, name="dropout")(x)
    x = layers.Dense(config.embedding_dim, name="project", dtype="float32")(x)
    x = layers.BatchNormalization(name="project_bn", dtype="float32")(x)
    outputs = layers.UnitNormalization(name="l2_normalize", dtype="float32")(x)
    return keras.Model(inputs, outputs, name="facesim_encoder")
