"""Batch augmentation for logos: crop/zoom, shifts, small rotations, colour jitter.

Keras preprocessing layers applied to whole batches (each image gets its own random
draw), inside ``tf.data`` on the CPU or inside the training step on the accelerator
(``--augment-on``, see ``logo_batch.training.augmentation``); the math is float32 in
both places. Never a horizontal flip: mirrored text is another logo. Borders are
filled by repeating the edge pixels, never by reflection, which would paint mirrored
copies of the logo into the image.
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf

VALUE_RANGE = (0.0, 255.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (0 turns one off)."""

    zoom: float = 0.2  # zoom in (crop) up to 20 %, out up to 10 %
    shift: float = 0.1  # fraction of height/width
    rotation: float = 0.03  # fraction of a full turn (0.03 = ±11 degrees)
    brightness: float = 0.2
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.04  # hue rotation up to ±2 % of the colour wheel
    blur: float = 0.0  # probability-like factor of a Gaussian blur


def build_augmenter(
    config: AugmentConfig | None = None, seed: int | None = None
) -> keras.Sequential:
    """The augmentation layers as a ``keras.Sequential`` (float32 [0, 255] in and out).

    The layers compute in float32 whatever the global dtype policy (mixed precision
    casts at the model's input, after augmentation).
    """
    c = config or AugmentConfig()
    fill = {"fill_mode": "nearest", "interpolation": "bilinear"}
    layers: list[keras.layers.Layer] = []

    def add(layer_type, strength, *args, **kwargs):
        if strength:
            layers.append(
                layer_type(
                    *args,
                    seed=None if seed is None else seed + len(layers),
                    dtype="float32",
                    **kwargs,
                )
            )

    add(keras.layers.RandomZoom, c.zoom, (-c.zoom, c.zoom / 2), **fill)
    add(keras.layers.RandomTranslation, c.shift, c.shift, c.shift, **fill)
    add(keras.layers.RandomRotation, c.rotation, c.rotation, **fill)
    add(keras.layers.RandomBrightness, c.brightness, c.brightness, value_range=VALUE_RANGE)
    add(keras.layers.RandomContrast, c.contrast, c.contrast, value_range=VALUE_RANGE)
    add(
        keras.layers.RandomSaturation,
        c.saturation,
        (0.5 - c.saturation / 2, 0.5 + c.saturation / 2),
        value_range=VALUE_RANGE,
    )
    add(keras.layers.RandomHue, c.hue, c.hue, value_range=VALUE_RANGE)
    add(keras.layers.RandomGaussianBlur, c.blur, c.blur, kernel_size=3, value_range=VALUE_RANGE)
    return keras.Sequential(layers, name="augment")


def make_augment_fn(config: AugmentConfig | None = None, seed: int | None = None):
    """A function for ``tf.data``: batch ``float32 [B, S, S, 3]`` → augmented batch."""
    augmenter = build_augmenter(config, seed)

    def augment(images: tf.Tensor) -> tf.Tensor:
        if not augmenter.layers:
            return images
        out = augmenter(images, training=True)
        return tf.clip_by_value(tf.cast(out, tf.float32), *VALUE_RANGE)

    return augment
