"""Classifier models: a ``keras.applications`` backbone (or a tiny CNN) plus a head.

Input: float32 pixels in [0, 255] → :class:`ScalePixels` (the backbone's range) →
backbone (always called with ``training=False``, so BatchNorm stays in inference
mode even when fine-tuned) → head → softmax in float32 (mixed-precision safe).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass

import keras

from logo_batch.inference.layers import ScalePixels

BACKBONE_LAYER = "backbone"
WEIGHTS_IMAGENET = "imagenet"
WEIGHTS_NONE = "none"
HEADS = ("default", "avgmax", "seed")
# Heads that are pooling, dropout and one dense softmax (a linear probe can fit them).
LINEAR_HEADS = ("default", "avgmax")


class WeightsError(RuntimeError):
    """Backbone weights that cannot be obtained or loaded."""


@dataclass(frozen=True)
class BackboneSpec:
    """How to build a backbone and scale its input."""

    build: Callable[..., keras.Model]
    scale_mode: str  # ScalePixels mode
    imagenet: bool = True  # has downloadable ImageNet weights


def _tiny_cnn(input_shape, weights=None, include_top=False, name="tiny_cnn"):
    """A small from-scratch CNN for tests and smoke runs (same interface as applications)."""
    del weights, include_top
    inputs = keras.Input(input_shape)
    x = inputs
    for filters in (16, 32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(x)
        x = keras.layers.BatchNormalization(momentum=0.9)(x)
        x = keras.layers.ReLU()(x)
        x = keras.layers.MaxPooling2D()(x)
    return keras.Model(inputs, x, name=name)


def _v3(constructor):
    def build(input_shape, weights=None, include_top=False):
        # include_preprocessing=False: ScalePixels("tf") gives the [-1, 1] it expects.
        return constructor(
            input_shape=input_shape,
            weights=weights,
            include_top=include_top,
            include_preprocessing=False,
        )

    return build


BACKBONES: dict[str, BackboneSpec] = {
    "mobilenet_v2": BackboneSpec(keras.applications.MobileNetV2, "tf"),
    "efficientnet_b0": BackboneSpec(keras.applications.EfficientNetB0, "none"),
    "resnet50": BackboneSpec(keras.applications.ResNet50, "caffe"),
    "mobilenet_v3_small": BackboneSpec(_v3(keras.applications.MobileNetV3Small), "tf"),
    "mobilenet_v3_large": BackboneSpec(_v3(keras.applications.MobileNetV3Large), "tf"),
    "tiny_cnn": BackboneSpec(_tiny_cnn, "tf", imagenet=False),
}


def build_backbone(backbone: str, image_size: int, weights: str = WEIGHTS_IMAGENET) -> keras.Model:
    """The backbone without top; ``weights``: ``imagenet``, ``none`` or a weights file."""
    if backbone not in BACKBONES:
        raise ValueError(f"unknown backbone {backbone!r}; choose from {sorted(BACKBONES)}")
    spec = BACKBONES[backbone]
    shape = (image_size, image_size, 3)
    if weights == WEIGHTS_IMAGENET:
        if not spec.imagenet:
            raise WeightsError(f"backbone {backbone!r} has no ImageNet weights; use weights=none")
        try:
            return spec.build(input_shape=shape, weights="imagenet", include_top=False)
        except Exception as error:  # noqa: BLE001  (download failures come in many types)
            raise WeightsError(
                f"could not get ImageNet weights for {backbone!r} ({type(error).__name__}: "
                f"{error}). Without internet access pass --weights PATH to a base weights "
                f"file (no top, e.g. *.weights.h5) or --weights none to train from scratch."
            ) from error
    base = spec.build(input_shape=shape, weights=None, include_top=False)
    if weights in (WEIGHTS_NONE, "", None):
        return base
    path = os.fspath(weights)
    if not os.path.isfile(path):
        raise WeightsError(
            f"{path}: weights file not found (weights must be 'imagenet', 'none' or a file path)"
        )
    try:
        base.load_weights(path)
    except Exception as error:  # noqa: BLE001
        raise WeightsError(
            f"{path}: cannot load into a {backbone} base without top at {image_size}px: {error}"
        ) from error
    return base


def build_model(
    backbone: str = "mobilenet_v2",
    num_classes: int = 27,
    image_size: int = 160,
    weights: str = WEIGHTS_IMAGENET,
    head: str = "default",
    dropout: float = 0.2,
) -> keras.Model:
    """The classifier: [0, 255] pixels in, float32 softmax over ``num_classes`` out.

    A pretrained backbone is frozen (see :func:`set_fine_tune` to unfreeze its top);
    with ``weights="none"`` the whole model trains from scratch. Heads:
    ``default`` = global average pooling, dropout, dense softmax; ``avgmax`` = the
    global average and the global max of each feature channel side by side, dropout,
    dense softmax (a logo covering one cell of the feature map keeps its full response
    in the max, where the average dilutes it with the background); ``seed`` = the
    article's AveragePooling2D(4x4), Flatten, Dense(128, relu), Dropout(0.5), softmax.
    """
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {HEADS}")
    base = build_backbone(backbone, image_size, weights)
    base.name = BACKBONE_LAYER
    pretrained = weights not in (WEIGHTS_NONE, "", None)
    base.trainable = not pretrained
    if not pretrained:
        _shorten_batch_norm_memory(base)
    inputs = keras.Input((image_size, image_size, 3), name="image")
    x = ScalePixels(BACKBONES[backbone].scale_mode, name="scale_pixels")(inputs)
    # Pretrained: BatchNorm always in inference mode. From scratch: BatchNorm learns.
    x = base(x, training=False) if pretrained else base(x)
    if head == "seed":
        pool = min(4, x.shape[1], x.shape[2])
        x = keras.layers.AveragePooling2D(pool_size=(pool, pool), name="head_pool")(x)
        x = keras.layers.Flatten(name="head_flatten")(x)
        x = keras.layers.Dense(128, activation="relu", name="head_dense")(x)
        x = keras.layers.Dropout(0.5, name="head_dropout")(x)
    else:
        if head == "avgmax":
            average = keras.layers.GlobalAveragePooling2D(name="head_average")(x)
            maximum = keras.layers.GlobalMaxPooling2D(name="head_max")(x)
            x = keras.layers.Concatenate(name="head_pool")([average, maximum])
        else:
            x = keras.layers.GlobalAveragePooling2D(name="head_pool")(x)
        x = keras.layers.Dropout(dropout, name="head_dropout")(x)
    outputs = keras.layers.Dense(
        num_classes, activation="softmax", dtype="float32", name="predictions"
    )(x)
    return keras.Model(inputs, outputs, name=f"{backbone}_{head}")


# Keras's ImageNet backbones use BatchNorm momentum 0.99-0.999, tuned for training on
# millions of images: after the few hundred steps of a from-scratch run here the
# moving statistics are still near their initial values and inference collapses to a
# constant prediction. 0.9 lets them follow the data within a few dozen steps.
FROM_SCRATCH_BN_MOMENTUM = 0.9


def _shorten_batch_norm_memory(base: keras.Model) -> None:
    for layer in base._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization):
            layer.momentum = min(layer.momentum, FROM_SCRATCH_BN_MOMENTUM)


def backbone_of(model: keras.Model) -> keras.Model:
    """The backbone sub-model of a model made by :func:`build_model`."""
    return model.get_layer(BACKBONE_LAYER)


def set_fine_tune(model: keras.Model, fraction: float) -> int:
    """Unfreezes the top ``fraction`` of the backbone's layers, BatchNorm excluded.

    Returns the number of layers made trainable. BatchNorm layers stay frozen (and
    run in inference mode anyway, the backbone being called with ``training=False``).
    A backbone trained from scratch (``fraction`` ignored) stays wholly trainable.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fine-tune fraction must be in [0, 1], not {fraction}")
    base = backbone_of(model)
    if base.trainable and all(layer.trainable for layer in base.layers):
        return sum(bool(layer.weights) for layer in base.layers)  # from scratch
    base.trainable = True
    start = len(base.layers) - round(len(base.layers) * fraction)
    unfrozen = 0
    for index, layer in enumerate(base.layers):
        trainable = index >= start and not isinstance(layer, keras.layers.BatchNormalization)
        layer.trainable = trainable
        unfrozen += int(trainable and bool(layer.weights))
    return unfrozen


def synchronize_batch_norm(model: keras.Model) -> int:
    """Makes every BatchNormalization layer use the global batch's statistics.

    Under a strategy with several replicas each replica otherwise normalizes (and
    updates its moving mean and variance) with its own slice of the batch, so the
    workers' moving statistics drift apart. Returns how many layers were changed.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, keras.layers.BatchNormalization) and not layer.synchronized:
            layer.synchronized = True
            changed += 1
    return changed
