"""Logo windows with context around each box (``--context``), learned with the crops."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf
from training_support import tiny_config

from logo_batch.data import context
from logo_batch.data import pipeline as data
from logo_batch.inference.bundle import load_bundle
from logo_batch.training import train
from logo_batch.training.datasets import build_datasets
from logo_batch.training.distribute import task_info

LOW, HIGH = context.CONTEXT_COVERAGE


def _windows(boxes, labels, height, width, per_box, seed):
    windows, found = context.context_boxes(
        tf.constant(boxes, tf.float32),
        tf.constant(labels, tf.int32),
        height,
        width,
        per_box,
        tf.constant(seed, tf.int32),
    )
    return windows.numpy(), found.numpy()


def _random_boxes(rng: np.random.Generator, height: int, width: int, count: int) -> np.ndarray:
    """Normalized boxes of 4-100% of each side, some of extreme aspect, some at an edge."""
    sides = rng.uniform(0.04, 1.0, size=(count, 2))
    starts = rng.uniform(0.0, 1.0, size=(count, 2)) * (1.0 - sides)
    boxes = np.concatenate([starts, starts + sides], axis=1)  # ymin, xmin, ymax, xmax
    return np.round(boxes * [height, width, height, width]) / [height, width, height, width]


def test_every_window_holds_its_box_inside_the_photo_at_the_drawn_coverage():
    rng = np.random.default_rng(0)
    coverages = []
    for trial in range(60):
        height, width = (int(v) for v in rng.integers(40, 900, size=2))
        boxes = _random_boxes(rng, height, width, 5)
        labels = rng.integers(0, 27, size=5)
        windows, found = _windows(boxes, labels, height, width, 3, [trial, 7])
        assert len(windows) == 15  # every box has area: per_box windows each
        assert np.array_equal(found, np.repeat(labels, 3))
        pixels = np.repeat(np.round(boxes * [height, width, height, width]), 3, axis=0)
        y0, x0, y1, x1 = windows.T
        assert (y0 >= 0).all() and (x0 >= 0).all() and (y1 <= height).all() and (x1 <= width).all()
        by0, bx0, by1, bx1 = pixels.T
        assert (y0 <= by0).all() and (x0 <= bx0).all() and (y1 >= by1).all() and (x1 >= bx1).all()
        box_area = (by1 - by0) * (bx1 - bx0)
        window_area = (y1 - y0) * (x1 - x0)
        assert (box_area <= window_area).all()  # coverage <= 100%
        # At least LOW: the drawn window (before rounding out to whole pixels, at most
        # one pixel on each side) is at most box / LOW.
        assert ((y1 - y0 - 2) * (x1 - x0 - 2) <= box_area / LOW * (1 + 1e-4)).all()
        coverages.extend(box_area / window_area)
    # The range is used, not just respected: small and large coverages both drawn.
    assert min(coverages) < 1.5 * LOW and max(coverages) > 0.8 * HIGH


def test_windows_of_a_small_box_in_a_large_photo_keep_the_aspect_range():
    boxes = [[0.45, 0.45, 0.55, 0.55]]  # 100 x 100 px in the middle of 1000 x 1000
    windows, _ = _windows(boxes, [3], 1000, 1000, 200, [5, 5])
    heights, widths = windows[:, 2] - windows[:, 0], windows[:, 3] - windows[:, 1]
    aspects = widths / heights
    low, high = context.CONTEXT_ASPECTS
    assert (aspects >= low * 0.97).all() and (aspects <= high * 1.03).all()
    assert aspects.min() < 0.8 and aspects.max() > 1.25
    # Placed over the photo: windows start on both sides of the box's centre line.
    centres = (windows[:, 1] + windows[:, 3]) / 2
    assert centres.min() < 470 and centres.max() > 530


def test_the_same_seed_gives_the_same_windows_and_another_seed_others():
    boxes = [[0.1, 0.2, 0.3, 0.5], [0.5, 0.5, 0.9, 0.7]]
    first = _windows(boxes, [1, 2], 480, 640, 4, [42, 3])
    again = _windows(boxes, [1, 2], 480, 640, 4, [42, 3])
    other = _windows(boxes, [1, 2], 480, 640, 4, [42, 4])
    assert np.array_equal(first[0], again[0]) and np.array_equal(first[1], again[1])
    assert not np.array_equal(first[0], other[0])


def test_boxes_without_area_get_no_window_and_the_others_still_do():
    boxes = [
        [0.3, 0.3, 0.3, 0.6],  # zero height
        [0.2, 0.4, 0.5, 0.4],  # zero width
        [1.2, 1.2, 1.5, 1.5],  # outside the photo: clipped to nothing
        [0.1, 0.1, 0.4, 0.3],
        [0.0, 0.0, 1.0, 1.0],  # the whole photo: the only window is the photo
    ]
    windows, labels = _windows(boxes, [0, 1, 2, 3, 4], 200, 300, 2, [1, 1])
    assert labels.tolist() == [3, 3, 4, 4]
    assert ((windows[:, 2] > windows[:, 0]) & (windows[:, 3] > windows[:, 1])).all()
    assert windows[2:].tolist() == [[0, 0, 200, 300]] * 2
    none, _ = _windows(np.zeros((0, 4)), np.zeros(0), 200, 300, 2, [1, 1])
    assert none.shape == (0, 4)


def _crop_labels(data_dir, split: str) -> np.ndarray:
    labels = data.split_labels(data.load_split(data_dir, "crops", split).records)
    return labels[labels < 27]


def test_each_crop_of_the_split_gets_its_windows_labelled_with_its_brand(synthetic_data_dir):
    photos = data.load_boxed_photos(
        synthetic_data_dir, data.split_filenames(synthetic_data_dir, "crops", "validation")
    )
    counted = context.context_labels(photos, 2, seed=3)
    examples = list(context.context_windows(photos, 32, 2, seed=3).as_numpy_iterator())
    crops = _crop_labels(synthetic_data_dir, "validation")
    assert len(examples) == len(counted) == 2 * crops.size > 0
    assert np.array_equal(np.sort(counted), np.sort(np.repeat(crops, 2)))  # same brands
    assert [label for _, label in examples] == counted.tolist()
    assert all(image.shape == (32, 32, 3) and image.max() > 0 for image, _ in examples)


def test_validation_data_holds_crops_context_and_background_windows(synthetic_data_dir, tmp_path):
    cfg = tiny_config(synthetic_data_dir, tmp_path, context=2, background=1).resolved()
    datasets = build_datasets(cfg, task_info(), replicas=1, augment_on=None)
    labels = []
    for _, one_hot, weights in datasets.validation.as_numpy_iterator():
        labels.extend(one_hot[weights > 0].argmax(axis=1))
    crops = _crop_labels(synthetic_data_dir, "validation")
    brands = np.bincount(np.asarray(labels), minlength=28)
    assert np.array_equal(brands[:27], 3 * np.bincount(crops, minlength=27))  # crop + 2 windows
    assert brands[27] > 0  # background windows, class none


def test_training_with_context_and_background_writes_a_bundle(synthetic_data_dir, tmp_path):
    config = tiny_config(
        synthetic_data_dir,
        tmp_path,
        context=1,
        background=1,
        epochs=1,
        fine_tune_epochs=0,
        steps_per_epoch=2,
    )
    result = train(config)
    bundle = load_bundle(result.bundle_dir)
    assert bundle.class_names[-1] == "none" and bundle.model.output_shape[-1] == 28
    recorded = bundle.metadata.training["config"]
    assert recorded["context"] == 1 and recorded["background"] == 1
    with pytest.raises(ValueError, match="context"):  # resuming needs the same windows
        train(tiny_config(synthetic_data_dir, tmp_path, context=2, background=1))


def test_a_smaller_min_coverage_draws_windows_where_the_box_is_smaller():
    # Small boxes in a large photo: windows are rarely clipped to the photo.
    boxes = np.array([[0.45, 0.45, 0.5, 0.5]] * 40, np.float32)
    labels = np.zeros(40, np.int32)
    coverage = {}
    for low in (LOW, 0.02):
        windows, _ = context.context_boxes(
            tf.constant(boxes), tf.constant(labels), 2000, 2000, 5, tf.constant([1, 2]), low
        )
        y0, x0, y1, x1 = windows.numpy().T.astype(float)
        coverage[low] = 100.0 * 100.0 / ((y1 - y0) * (x1 - x0))
        # Within [low, 1], allowing the rounding out to whole pixels.
        assert coverage[low].max() <= 1.0 and coverage[low].min() >= low * 0.97
    assert coverage[0.02].min() < LOW and np.median(coverage[0.02]) < np.median(coverage[LOW])
