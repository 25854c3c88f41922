"""Synthetic context: training crops pasted small into windows with no logo (``--paste``).

Whole-photo mode meets logos of 10-40 px inside windows of a scene; the crops are tight.
Data expansion by synthesising context (Su et al., WACV 2017; copy-paste augmentation):
each training crop (a logo with its margin) is pasted into windows with no logo cut from
the training photos (:func:`logo_batch.data.background.background_crops`), scaled to 8-50% of
the window's side, rotated and tilted a little, its colour shifted, sometimes blurred,
with soft edges, anywhere in the window; labelled with the crop's brand. Stateless: the
same seed gives the same windows. Never flipped.
"""

from __future__ import annotations

import math

import tensorflow as tf

from logo_batch.inference.preprocessing import resize_image

AUTOTUNE = tf.data.AUTOTUNE

PASTE_SIDES = (0.08, 0.5)  # the pasted crop's side, a fraction of the window's side
PASTE_ASPECTS = (0.8, 1.25)
PASTE_ROTATION = 0.03  # of a turn: up to +-11 degrees
PASTE_TILT = 0.03  # projective terms up to this / patch side: a slight perspective
FEATHER = 0.15  # soft edges: alpha ramps over this fraction of the patch's short side
BLUR_PROBABILITY = 0.3  # shrunk to 40-100% and enlarged back
_DRAWS = 11


def _log_uniform(u: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    low, high = math.log(bounds[0]), math.log(bounds[1])
    return tf.exp(low + (high - low) * u)


def _feathered_alpha(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    """``float32 [h, w, 1]``: 1 inside, ramping to 0 over the last ``FEATHER`` of the side."""
    hf, wf = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    ramp = tf.maximum(FEATHER * tf.minimum(hf, wf), 1.0)
    ys, xs = tf.range(hf) + 0.5, tf.range(wf) + 0.5
    ay = tf.clip_by_value(tf.minimum(ys, hf - ys) / ramp, 0.0, 1.0)
    ax = tf.clip_by_value(tf.minimum(xs, wf - xs) / ramp, 0.0, 1.0)
    return (ay[:, None] * ax[None, :])[..., None]


def paste_crop(window: tf.Tensor, crop: tf.Tensor, image_size: int, seed: tf.Tensor) -> tf.Tensor:
    """``crop`` (``uint8 [h, w, 3]``) pasted into ``window`` (``uint8``, no logo) as one
    model input ``float32 [S, S, 3]`` (the window resized by :func:`resize_image`)."""
    s = image_size
    u = tf.random.stateless_uniform([_DRAWS], seed)
    background = resize_image(window, s)
    side = _log_uniform(u[0], PASTE_SIDES) * s
    aspect = _log_uniform(u[1], PASTE_ASPECTS)
    h = tf.maximum(tf.cast(tf.round(side / tf.sqrt(aspect)), tf.int32), 6)
    w = tf.maximum(tf.cast(tf.round(side * tf.sqrt(aspect)), tf.int32), 6)
    size = tf.stack([h, w])
    patch = tf.image.resize(tf.cast(crop, tf.float32), size, antialias=True)
    small = tf.maximum(tf.cast(tf.cast(size, tf.float32) * (0.4 + 0.6 * u[2]), tf.int32), 3)
    patch = tf.cond(
        u[3] < BLUR_PROBABILITY,
        lambda: tf.image.resize(tf.image.resize(patch, small, antialias=True), size),
        lambda: patch,
    )
    mean = tf.reduce_mean(patch, axis=[0, 1], keepdims=True)  # contrast 0.7-1.3, offset +-40
    patch = (patch - mean) * (0.7 + 0.6 * u[4]) + mean + (u[5] - 0.5) * 80.0
    rgba = tf.concat([patch, _feathered_alpha(h, w) * 255.0], axis=-1)
    angle = (2.0 * u[6] - 1.0) * PASTE_ROTATION * 2.0 * math.pi
    cos, sin = tf.cos(angle), tf.sin(angle)
    hf, wf = tf.cast(h, tf.float32), tf.cast(w, tf.float32)
    cx, cy = (wf - 1.0) / 2.0, (hf - 1.0) / 2.0
    tilt = (2.0 * u[7:9] - 1.0) * PASTE_TILT / tf.stack([wf, hf])
    transform = tf.stack(
        [cos, -sin, cx - cos * cx + sin * cy, sin, cos, cy - sin * cx - cos * cy, tilt[0], tilt[1]]
    )
    rgba = tf.raw_ops.ImageProjectiveTransformV3(
        images=rgba[None],
        transforms=transform[None],
        output_shape=size,
        fill_value=0.0,
        interpolation="BILINEAR",
        fill_mode="CONSTANT",
    )[0]
    y0 = tf.cast(tf.floor(u[9] * tf.cast(s - h + 1, tf.float32)), tf.int32)
    x0 = tf.cast(tf.floor(u[10] * tf.cast(s - w + 1, tf.float32)), tf.int32)
    placed = tf.pad(rgba, [[y0, s - h - y0], [x0, s - w - x0], [0, 0]])
    alpha = placed[..., 3:] / 255.0
    out = background * (1.0 - alpha) + tf.clip_by_value(placed[..., :3], 0.0, 255.0) * alpha
    return tf.ensure_shape(tf.clip_by_value(out, 0.0, 255.0), [s, s, 3])


def pasted_windows(
    crops: tf.data.Dataset, windows: tf.data.Dataset, image_size: int, per_crop: int, seed: int
) -> tf.data.Dataset:
    """``(float32 [S, S, 3], int32 label)``: each crop of ``crops`` (``(uint8, label)``)
    pasted into ``per_crop`` windows of ``windows`` (``uint8``, no logo): the windows in a
    fixed shuffled order, the draws stateless in (``seed``, example index)."""
    backgrounds = windows.shuffle(4096, seed=seed, reshuffle_each_iteration=False).repeat()
    repeated = crops.flat_map(
        lambda crop, label: tf.data.Dataset.from_tensors((crop, label)).repeat(per_crop)
    )

    def make(index, pair):
        (crop, label), window = pair
        example_seed = tf.stack([tf.constant(seed, tf.int32), tf.cast(index, tf.int32)])
        return paste_crop(window, crop, image_size, example_seed), tf.cast(label, tf.int32)

    pairs = tf.data.Dataset.zip(repeated, backgrounds).enumerate()
    return pairs.map(make, num_parallel_calls=AUTOTUNE, deterministic=True)
