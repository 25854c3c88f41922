"""Hard examples at their own scale: the whole-photo grid's windows of the training photos
(``--grid-windows``).

Whole-photo mode classifies each photo through a fixed grid of windows
(:func:`logo_batch.inference.whole_photo.photo_windows`). Here the training photos are cut the same
way, and each window is labelled by its overlap with the photo's logo boxes
(:func:`grid_window_labels`): a window holding at least ``MIN_INSIDE`` of a box is that
box's brand (the largest such box), one holding at most ``MAX_INSIDE_NEGATIVE`` of every
box is background; a window that cuts a logo is left out. Every logo window is kept and
up to ``negatives`` background windows per photo (a stateless draw: the same seed keeps the
same windows).
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from logo_batch.inference.preprocessing import decode_image_tf, resize_image
from logo_batch.inference.whole_photo import photo_windows

MIN_INSIDE = 0.7
MAX_INSIDE_NEGATIVE = 0.05
_STREAM = 2  # folded into the seed: other draws than background or context windows make


def grid_window_labels(
    windows: tf.Tensor,
    boxes: tf.Tensor,
    labels: tf.Tensor,
    height: tf.Tensor,
    width: tf.Tensor,
    background_label: int,
) -> tf.Tensor:
    """``int32 [W]``: per window ``(x0, y0, x1, y1)`` (pixels), the label of the largest
    box at least ``MIN_INSIDE`` inside it; ``background_label`` when no box is more than
    ``MAX_INSIDE_NEGATIVE`` inside; -1 otherwise (a cut logo). ``boxes``: normalized
    ``(ymin, xmin, ymax, xmax)``."""
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    by0, bx0, by1, bx1 = tf.unstack(tf.reshape(boxes, [-1, 4]) * tf.stack([h, w, h, w]), axis=1)
    x0, y0, x1, y1 = tf.split(tf.cast(windows, tf.float32), 4, axis=1)
    inter_w = tf.maximum(0.0, tf.minimum(x1, bx1) - tf.maximum(x0, bx0))
    inter_h = tf.maximum(0.0, tf.minimum(y1, by1) - tf.maximum(y0, by0))
    area = tf.maximum((by1 - by0) * (bx1 - bx0), 1.0)
    inside = inter_w * inter_h / area  # [W, N]
    holds = inside >= MIN_INSIDE
    largest = tf.argmax(tf.where(holds, area, -1.0), axis=1, output_type=tf.int32)
    brand = tf.gather(tf.cast(tf.reshape(labels, [-1]), tf.int32), largest)
    clear = tf.reduce_all(inside <= MAX_INSIDE_NEGATIVE, axis=1)
    return tf.where(tf.reduce_any(holds, axis=1), brand, tf.where(clear, background_label, -1))


def _windows(height: tf.Tensor, width: tf.Tensor) -> tf.Tensor:
    def grid(h, w):
        return photo_windows(int(h), int(w)).astype(np.int32)

    return tf.reshape(tf.numpy_function(grid, [height, width], tf.int32), [-1, 4])


def _kept(index, height, width, boxes, labels, background_label, negatives, seed):
    """The windows of one photo that are kept, and their labels."""
    windows = _windows(height, width)
    found = grid_window_labels(windows, boxes, labels, height, width, background_label)
    photo_seed = tf.stack([tf.constant(seed, tf.int32), tf.cast(index, tf.int32)])
    draw = tf.random.stateless_uniform(
        tf.shape(found), tf.random.experimental.stateless_fold_in(photo_seed, _STREAM)
    )
    negative = found == background_label
    rank = tf.argsort(tf.argsort(tf.where(negative, draw, 2.0)))  # negatives first, by draw
    keep = (found >= 0) & (~negative | (rank < negatives))
    return tf.boolean_mask(windows, keep), tf.boolean_mask(found, keep)


def grid_labels(photos: tf.data.Dataset, background_label: int, negatives: int, seed: int):
    """The labels of the windows :func:`grid_examples` gives, in order (headers only)."""

    def found(index, jpeg, boxes, labels):
        shape = tf.image.extract_jpeg_shape(jpeg)
        return _kept(index, shape[0], shape[1], boxes, labels, background_label, negatives, seed)[1]

    per_photo = photos.enumerate().map(lambda i, ex: found(i, *ex))
    return np.concatenate([np.zeros(0, np.int32), *per_photo.as_numpy_iterator()])


def grid_examples(
    photos: tf.data.Dataset, image_size: int, background_label: int, negatives: int, seed: int
) -> tf.data.Dataset:
    """``(float32 [S, S, 3], int32 label)``: the kept grid windows of every photo of
    ``(jpeg, boxes, labels)``, cut and resized as whole-photo mode cuts them."""

    def per_photo(index, jpeg, boxes, labels):
        image = decode_image_tf(jpeg)
        shape = tf.shape(image)
        windows, found = _kept(
            index, shape[0], shape[1], boxes, labels, background_label, negatives, seed
        )
        return tf.data.Dataset.from_tensor_slices((windows, found)).map(
            lambda win, label: (
                resize_image(image[win[1] : win[3], win[0] : win[2]], image_size),
                label,
            )
        )

    return photos.enumerate().flat_map(lambda index, example: per_photo(index, *example))
