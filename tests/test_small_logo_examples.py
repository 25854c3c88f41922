"""The small-logo training examples (issue 28's levers): low-resolution logos
(``--low-res``), crops pasted into windows with no logo (``--paste``) and the whole-photo
grid's windows labelled by overlap (``--grid-windows``)."""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from logo_batch.data.grid_windows import grid_window_labels
from logo_batch.data.paste import paste_crop, pasted_windows
from logo_batch.training.augment import AugmentConfig, FusedAugment


def _still(config: AugmentConfig) -> AugmentConfig:
    """Only the step under test: every other strength 0."""
    return AugmentConfig(
        zoom=0, shift=0, rotation=0, brightness=0, contrast=0, saturation=0, hue=0,
        low_res=config.low_res,
    )  # fmt: skip


def test_low_resolution_blurs_some_images_and_keeps_the_rest_and_the_shape():
    rng = np.random.default_rng(0)
    images = tf.constant(rng.uniform(0, 255, (16, 64, 64, 3)), tf.float32)
    off = FusedAugment(_still(AugmentConfig(low_res=0.0)), seed=1)(images, training=True)
    np.testing.assert_allclose(off.numpy(), images.numpy(), atol=1e-4)
    out = FusedAugment(_still(AugmentConfig(low_res=1.0)), seed=1)(images, training=True)
    assert out.shape == images.shape

    # Noise shrunk to 16-80 px and enlarged loses its fine detail: far less variance
    # between neighbouring pixels, every image.
    def roughness(x):
        return np.abs(np.diff(x, axis=2)).mean(axis=(1, 2, 3))

    assert np.all(roughness(out.numpy()) < 0.7 * roughness(images.numpy()))
    half = FusedAugment(_still(AugmentConfig(low_res=0.5)), seed=3)(images, training=True)
    changed = np.abs(half.numpy() - images.numpy()).mean(axis=(1, 2, 3)) > 1.0
    assert 0 < changed.sum() < 16  # some, not all, for this seed


def test_a_pasted_crop_is_small_soft_edged_and_deterministic():
    window = np.full((120, 160, 3), 30, np.uint8)  # a dark, flat window
    crop = np.full((40, 40, 3), 230, np.uint8)  # a bright logo crop
    seed = tf.constant([7, 1], tf.int32)
    out = paste_crop(window, crop, 64, seed).numpy()
    again = paste_crop(window, crop, 64, seed).numpy()
    np.testing.assert_array_equal(out, again)
    assert out.shape == (64, 64, 3)
    bright = out.mean(axis=2) > 100
    assert 0 < bright.mean() <= 0.5**2 * 1.5  # the crop covers at most ~half of each side
    assert (out.mean(axis=2) < 35).mean() > 0.5  # most of the window is left as it was
    edge = (out.mean(axis=2) > 40) & (out.mean(axis=2) < 200)
    assert edge.any()  # soft edges: blended pixels between crop and window


def test_pasted_windows_pairs_every_crop_with_windows_and_keeps_its_label():
    crops = tf.data.Dataset.from_tensor_slices(
        (np.full((3, 20, 20, 3), 200, np.uint8), np.array([4, 1, 2], np.int64))
    )
    windows = tf.data.Dataset.from_tensor_slices(np.zeros((2, 50, 50, 3), np.uint8))
    examples = list(pasted_windows(crops, windows, 32, 2, seed=5).as_numpy_iterator())
    assert [int(label) for _, label in examples] == [4, 4, 1, 1, 2, 2]
    assert all(image.shape == (32, 32, 3) and image.max() > 100 for image, _ in examples)


def test_grid_windows_are_labelled_by_how_much_of_a_box_they_hold():
    # A 100 x 200 photo (h x w), one box of brand 3 at x 20-40, y 10-30 (normalized
    # ymin, xmin, ymax, xmax), background label 27.
    boxes = tf.constant([[0.1, 0.1, 0.3, 0.2]], tf.float32)
    windows = tf.constant(
        [
            [0, 0, 200, 100],  # the whole photo: holds the box
            [25, 0, 100, 100],  # holds 3/4 of the box's width: >= 70%
            [30, 0, 100, 100],  # holds half of it: a cut logo, left out
            [100, 0, 200, 100],  # none of it: background
        ],
        tf.int32,
    )
    labels = grid_window_labels(windows, boxes, tf.constant([3]), 100, 200, 27).numpy()
    assert labels.tolist() == [3, 3, -1, 27]
