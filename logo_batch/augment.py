"""Batch augmentation for logos: crop/zoom, shifts, small rotations, colour jitter.

Vectorized over whole batches inside ``tf.data``, each image with its own random
draw, in two passes over the pixels:

- geometry: zoom, shift and rotation composed into ONE affine transform per image,
  applied by a single bilinear warp (``ImageProjectiveTransformV3``);
- colour: brightness and contrast as arithmetic, saturation and hue in ONE
  RGB -> HSV -> RGB round trip with TensorFlow's fused kernels.

(Keras's preprocessing layers warp once per layer and convert to HSV once per colour
layer: measured 4x slower on a 2-core CPU, see benchmarks/RESULTS.md.)

Never a horizontal flip: mirrored text is another logo. Borders are filled by
repeating the edge pixels, never by reflection, which would paint mirrored copies of
the logo into the image.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import tensorflow as tf

VALUE_RANGE = (0.0, 255.0)


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation strengths (0 turns one off)."""

    zoom: float = 0.2  # zoom in (crop) up to 20 %, out up to 10 %
    shift: float = 0.1  # fraction of height/width
    rotation: float = 0.03  # fraction of a full turn (0.03 = ±11 degrees)
    brightness: float = 0.2  # fraction of the value range
    contrast: float = 0.2
    saturation: float = 0.2
    hue: float = 0.02  # fraction of the colour wheel (0.02 = ±7 degrees)
    blur: float = 0.0  # probability of a 3x3 Gaussian blur


def _uniform(batch: tf.Tensor, low: float, high: float, seed) -> tf.Tensor:
    return tf.random.uniform([batch], low, high, seed=seed)


def _affine(images: tf.Tensor, c: AugmentConfig, seed) -> tf.Tensor:
    """One warp per image: rotation about the centre, zoom and shift, edge-filled."""
    shape = tf.shape(images)
    batch = shape[0]
    height, width = tf.cast(shape[1], tf.float32), tf.cast(shape[2], tf.float32)
    angle = _uniform(batch, -c.rotation, c.rotation, seed) * 2.0 * math.pi
    # scale < 1 samples a smaller input window: zoom in; > 1 zooms out.
    scale = _uniform(batch, 1.0 - c.zoom, 1.0 + c.zoom / 2.0, seed)
    tx = _uniform(batch, -c.shift, c.shift, seed) * width
    ty = _uniform(batch, -c.shift, c.shift, seed) * height
    cx, cy = (width - 1.0) / 2.0, (height - 1.0) / 2.0
    cos, sin = tf.cos(angle) * scale, tf.sin(angle) * scale
    # Output pixel (x, y) samples input (a0 x + a1 y + a2, b0 x + b1 y + b2).
    transforms = tf.stack(
        [
            cos, -sin, cx - cos * cx + sin * cy + tx,
            sin, cos, cy - sin * cx - cos * cy + ty,
            tf.zeros_like(cos), tf.zeros_like(cos),
        ],
        axis=1,
    )  # fmt: skip
    return tf.raw_ops.ImageProjectiveTransformV3(
        images=images,
        transforms=transforms,
        output_shape=shape[1:3],
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="NEAREST",
    )


def _colour(images: tf.Tensor, c: AugmentConfig, seed) -> tf.Tensor:
    """Brightness, contrast, then saturation and hue in one HSV round trip."""
    batch = tf.shape(images)[0]
    per_image = [batch, 1, 1, 1]
    low, high = VALUE_RANGE
    x = images
    if c.brightness:
        x = x + tf.reshape(_uniform(batch, -c.brightness, c.brightness, seed), per_image) * high
    if c.contrast:
        mean = tf.reduce_mean(x, axis=[1, 2], keepdims=True)
        factor = tf.reshape(_uniform(batch, 1.0 - c.contrast, 1.0 + c.contrast, seed), per_image)
        x = (x - mean) * factor + mean
    x = tf.clip_by_value(x, low, high)
    if c.saturation or c.hue:
        hsv = tf.image.rgb_to_hsv(x / high)
        hue = hsv[..., 0:1] + tf.reshape(_uniform(batch, -c.hue, c.hue, seed), per_image)
        hue = hue - tf.floor(hue)
        sat = hsv[..., 1:2] * tf.reshape(
            _uniform(batch, 1.0 - c.saturation, 1.0 + c.saturation, seed), per_image
        )
        hsv = tf.concat([hue, tf.clip_by_value(sat, 0.0, 1.0), hsv[..., 2:3]], axis=-1)
        x = tf.image.hsv_to_rgb(hsv) * high
    return x


def _blur(images: tf.Tensor, probability: float, seed) -> tf.Tensor:
    """A 3x3 Gaussian blur on a random share of the images."""
    kernel_1d = tf.constant([0.25, 0.5, 0.25])
    kernel = tf.tile((kernel_1d[:, None] * kernel_1d[None, :])[:, :, None, None], [1, 1, 3, 1])
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]], mode="SYMMETRIC")
    blurred = tf.nn.depthwise_conv2d(padded, kernel, [1, 1, 1, 1], "VALID")
    chosen = _uniform(tf.shape(images)[0], 0.0, 1.0, seed) < probability
    return tf.where(chosen[:, None, None, None], blurred, images)


def make_augment_fn(
    config: AugmentConfig | None = None, seed: int | None = None
) -> Callable[[tf.Tensor], tf.Tensor]:
    """A function for ``tf.data``: batch ``float32 [B, S, S, 3]`` in [0, 255] → augmented."""
    c = config or AugmentConfig()

    def augment(images: tf.Tensor) -> tf.Tensor:
        x = tf.cast(images, tf.float32)
        if c.zoom or c.shift or c.rotation:
            x = _affine(x, c, seed)
        x = _colour(x, c, seed)
        if c.blur:
            x = _blur(x, c.blur, seed)
        return tf.clip_by_value(x, *VALUE_RANGE)

    return augment
