"""Logo windows with context, cut from the training photos: whole-photo-like examples.

Whole-photo mode scores windows where a logo may be small, with a scene around it; the
crops are tight. For every logo box of a photo, ``per_box`` windows hold the whole box
(clipped to the photo) with random context around it: the box covers 10-100% of a
window's area (log-uniform), the window's aspect (w / h) is 0.7-1.4 (log-uniform) where
the box allows it, and the window lies anywhere in the photo that still holds the box.
Stateless: the same seed gives the same windows. Labelled with the box's brand, they
are learned with the crops (``--context``). Never flipped.
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from logo_batch.data.background import BACKGROUND_ASPECTS
from logo_batch.inference.preprocessing import decode_image_tf, resize_image

AUTOTUNE = tf.data.AUTOTUNE

# The box's share of a window's area (log-uniform), and the window's aspect (w / h).
CONTEXT_COVERAGE = (0.1, 1.0)
CONTEXT_ASPECTS = BACKGROUND_ASPECTS
# Folded into the seed: context windows draw other numbers than background windows do
# from the same (seed, photo index).
_STREAM = 1


def _log_uniform(u: tf.Tensor, bounds: tuple[float, float]) -> tf.Tensor:
    low, high = np.log(bounds[0]), np.log(bounds[1])
    return tf.exp(low + (high - low) * u)


def context_boxes(
    boxes: tf.Tensor,
    labels: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    per_box: int,
    seed: tf.Tensor,
    min_coverage: float = CONTEXT_COVERAGE[0],
) -> tuple[tf.Tensor, tf.Tensor]:
    """``per_box`` windows ``int32 [n, 4]`` (y0, x0, y1, x1) around each logo box of a
    photo, and their labels ``int32 [n]`` (the box's).

    ``boxes`` are normalized ``(ymin, xmin, ymax, xmax)``, clipped to the photo and
    rounded to pixels; a box with no area there (zero height or width) gets no window.
    Each window holds its whole box, which covers ``min_coverage`` to all of the
    window's area (log-uniform; default ``CONTEXT_COVERAGE``); when the photo is too
    small for the drawn window, it is clipped to the photo (the box then covers more of
    it). Deterministic for a given ``seed``
    (``int32 [2]``, stateless random numbers).
    """
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    scale = tf.stack([h, w, h, w])
    pixels = tf.clip_by_value(tf.round(tf.reshape(boxes, [-1, 4]) * scale), 0.0, scale)
    pixels = tf.repeat(pixels, per_box, axis=0)
    labels = tf.repeat(tf.cast(tf.reshape(labels, [-1]), tf.int32), per_box, axis=0)
    by0, bx0, by1, bx1 = tf.unstack(pixels, axis=1)
    keep = (by1 - by0 >= 1.0) & (bx1 - bx0 >= 1.0)
    box_h, box_w = tf.maximum(by1 - by0, 1.0), tf.maximum(bx1 - bx0, 1.0)
    count = tf.shape(pixels)[:1]
    seeds = tf.random.experimental.stateless_split(
        tf.random.experimental.stateless_fold_in(seed, _STREAM), 4
    )
    u = [tf.random.stateless_uniform(count, s, 0.0, 1.0) for s in tf.unstack(seeds)]
    # The window's area, >= the box's.
    area = box_h * box_w / _log_uniform(u[0], (min_coverage, CONTEXT_COVERAGE[1]))
    aspect = _log_uniform(u[1], CONTEXT_ASPECTS)
    # The drawn aspect where the box allows it; the area kept: the window holds the box.
    win_w = tf.minimum(tf.maximum(tf.sqrt(area * aspect), box_w), area / box_h)
    win_h = tf.maximum(area / win_w, box_h)
    # Inside the photo: a side cut to the photo gives its area to the other side.
    win_w = tf.minimum(win_w, w)
    win_h = tf.minimum(tf.maximum(win_h, area / win_w), h)
    win_w = tf.minimum(tf.maximum(win_w, area / win_h), w)
    # Anywhere in the photo that still holds the box.
    y_low, y_high = tf.maximum(0.0, by1 - win_h), tf.minimum(by0, h - win_h)
    x_low, x_high = tf.maximum(0.0, bx1 - win_w), tf.minimum(bx0, w - win_w)
    y0 = y_low + tf.maximum(y_high - y_low, 0.0) * u[2]
    x0 = x_low + tf.maximum(x_high - x_low, 0.0) * u[3]
    windows = tf.stack(
        [
            tf.floor(y0),
            tf.floor(x0),
            tf.minimum(tf.math.ceil(y0 + win_h), h),
            tf.minimum(tf.math.ceil(x0 + win_w), w),
        ],
        axis=1,
    )
    windows = tf.cast(windows, tf.int32)
    return tf.boolean_mask(windows, keep), tf.boolean_mask(labels, keep)


def _photo_seed(seed: int, index: tf.Tensor) -> tf.Tensor:
    return tf.stack([tf.constant(seed, tf.int32), tf.cast(index, tf.int32)])


def context_labels(
    photos: tf.data.Dataset, per_box: int, seed: int, min_coverage: float = CONTEXT_COVERAGE[0]
) -> np.ndarray:
    """The labels of the windows :func:`context_windows` gives, in order (reads JPEG
    headers only). ``photos``: ``(jpeg, boxes float32 [N, 4], labels [N])``."""

    def found(index, jpeg, boxes, labels):
        shape = tf.image.extract_jpeg_shape(jpeg)
        seeds = _photo_seed(seed, index)
        return context_boxes(boxes, labels, shape[0], shape[1], per_box, seeds, min_coverage)[1]

    per_photo = photos.enumerate().map(lambda i, ex: found(i, *ex))
    return np.concatenate([np.zeros(0, np.int32), *per_photo.as_numpy_iterator()])


def context_crops(
    photos: tf.data.Dataset, per_box: int, seed: int, min_coverage: float = CONTEXT_COVERAGE[0]
) -> tf.data.Dataset:
    """``(uint8 [h, w, 3] window, int32 label)``: :func:`context_boxes` of every photo
    of ``(jpeg, boxes, labels)``; the same seed gives the same windows."""

    def crops(index, jpeg, boxes, labels):
        image = decode_image_tf(jpeg)
        shape = tf.shape(image)
        windows, window_labels = context_boxes(
            boxes, labels, shape[0], shape[1], per_box, _photo_seed(seed, index), min_coverage
        )
        return tf.data.Dataset.from_tensor_slices((windows, window_labels)).map(
            lambda window, label: (image[window[0] : window[2], window[1] : window[3]], label)
        )

    return photos.enumerate().flat_map(lambda index, example: crops(index, *example))


def context_windows(
    photos: tf.data.Dataset,
    image_size: int,
    per_box: int,
    seed: int,
    min_coverage: float = CONTEXT_COVERAGE[0],
) -> tf.data.Dataset:
    """``(image float32 [S, S, 3], label int32)``: :func:`context_crops` resized with the
    shared :func:`resize_image` (as background windows and whole-photo windows are)."""
    return context_crops(photos, per_box, seed, min_coverage).map(
        lambda crop, label: (resize_image(crop, image_size), label),
        num_parallel_calls=AUTOTUNE,
    )
