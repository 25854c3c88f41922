"""Windows with no logo, cut from the training photos: the background class's examples.

A window is 20-60% of the photo's short side, of aspect 0.7-1.4, placed at random
(stateless: the same seed gives the same windows) and kept only when it covers at most
5% of every logo box's area. Used to train the class ``none`` (``--background``) and
as the negatives the whole-photo threshold is chosen on.
"""

from __future__ import annotations

import tensorflow as tf

from logo_batch.inference.preprocessing import decode_image_tf, resize_image

AUTOTUNE = tf.data.AUTOTUNE

# Background windows: side as a fraction of the photo's short side, aspect (w / h),
# and how much of any logo box a window may cover (of the box's area).
BACKGROUND_SCALES = (0.2, 0.6)
BACKGROUND_ASPECTS = (0.7, 1.4)
BACKGROUND_MAX_OVERLAP = 0.05
_CANDIDATES = 64  # windows drawn per photo; the first ``per_image`` clear of boxes are kept


def background_boxes(
    boxes: tf.Tensor, height: tf.Tensor, width: tf.Tensor, per_image: int, seed: tf.Tensor
) -> tf.Tensor:
    """Up to ``per_image`` windows ``int32 [n, 4]`` (y0, x0, y1, x1) of a photo that hold
    no logo: each covers at most ``BACKGROUND_MAX_OVERLAP`` of every box's area.

    Deterministic for a given ``seed`` (``int32 [2]``, stateless random numbers).
    """
    h, w = tf.cast(height, tf.float32), tf.cast(width, tf.float32)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    uniform = [tf.random.stateless_uniform([_CANDIDATES], s, 0.0, 1.0) for s in tf.unstack(seeds)]
    low, high = BACKGROUND_SCALES
    side = tf.minimum(h, w) * (low + (high - low) * uniform[0])
    aspect = tf.exp(
        tf.math.log(BACKGROUND_ASPECTS[0])
        + (tf.math.log(BACKGROUND_ASPECTS[1]) - tf.math.log(BACKGROUND_ASPECTS[0])) * uniform[1]
    )
    win_w = tf.minimum(side * tf.sqrt(aspect), w)
    win_h = tf.minimum(side / tf.sqrt(aspect), h)
    x0 = (w - win_w) * uniform[2]
    y0 = (h - win_h) * uniform[3]
    y1, x1 = y0 + win_h, x0 + win_w
    # Overlap of every candidate with every box, as a fraction of the box's area.
    by0, bx0 = boxes[:, 0] * h, boxes[:, 1] * w
    by1, bx1 = boxes[:, 2] * h, boxes[:, 3] * w
    inter_h = tf.maximum(0.0, tf.minimum(y1[:, None], by1) - tf.maximum(y0[:, None], by0))
    inter_w = tf.maximum(0.0, tf.minimum(x1[:, None], bx1) - tf.maximum(x0[:, None], bx0))
    box_area = tf.maximum((by1 - by0) * (bx1 - bx0), 1.0)
    covered = tf.reduce_max(
        tf.concat([inter_h * inter_w / box_area, tf.zeros([_CANDIDATES, 1])], axis=1), axis=1
    )
    clear = covered <= BACKGROUND_MAX_OVERLAP
    windows = tf.cast(tf.round(tf.stack([y0, x0, y1, x1], axis=1)), tf.int32)
    return tf.boolean_mask(windows, clear)[:per_image]


def count_background_windows(photos: tf.data.Dataset, per_image: int, seed: int) -> int:
    """How many windows :func:`background_windows` gives (reads JPEG headers only)."""

    def count(index, jpeg, boxes):
        shape = tf.image.extract_jpeg_shape(jpeg)
        seeds = tf.stack([seed, tf.cast(index, tf.int32)])
        return tf.shape(background_boxes(boxes, shape[0], shape[1], per_image, seeds))[0]

    counts = photos.enumerate().map(lambda i, ex: count(i, ex[0], ex[1]))
    return int(sum(counts.as_numpy_iterator()))


def background_crops(photos: tf.data.Dataset, per_image: int, seed: int) -> tf.data.Dataset:
    """``uint8 [h, w, 3]`` windows with no logo cut from the photos (see
    :func:`background_boxes`), up to ``per_image`` each; the same seed gives the same."""

    def crops(index, jpeg, boxes):
        image = decode_image_tf(jpeg)
        shape = tf.shape(image)
        seeds = tf.stack([seed, tf.cast(index, tf.int32)])
        found = background_boxes(boxes, shape[0], shape[1], per_image, seeds)
        return tf.data.Dataset.from_tensor_slices(found).map(
            lambda window: image[window[0] : window[2], window[1] : window[3]]
        )

    return photos.enumerate().flat_map(lambda index, example: crops(index, *example))


def background_windows(
    photos: tf.data.Dataset, image_size: int, per_image: int, label: int, seed: int
) -> tf.data.Dataset:
    """``(image float32 [S, S, 3], label)``: :func:`background_crops` resized with the
    shared :func:`resize_image`, all labelled ``label`` (the background class)."""
    return background_crops(photos, per_image, seed).map(
        lambda crop: (resize_image(crop, image_size), tf.constant(label, tf.int32)),
        num_parallel_calls=AUTOTUNE,
    )
