"""Windows with no logo, learned as the class ``none``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import tensorflow as tf
from training_support import tiny_config

from logo_batch.data import background
from logo_batch.data import pipeline as data
from logo_batch.inference.bundle import load_bundle
from logo_batch.training import train


def test_background_boxes_avoid_every_logo_and_stay_inside_the_photo():
    boxes = tf.constant([[0.1, 0.1, 0.5, 0.4], [0.6, 0.5, 0.9, 0.95]], tf.float32)
    height, width = 300, 400
    found = background.background_boxes(boxes, height, width, 8, tf.constant([1, 2])).numpy()
    assert 0 < len(found) <= 8
    y0, x0, y1, x1 = found.T
    assert (y0 >= 0).all() and (x0 >= 0).all() and (y1 <= height).all() and (x1 <= width).all()
    assert (y1 > y0).all() and (x1 > x0).all()
    short = min(height, width)
    sides = np.sqrt((y1 - y0) * (x1 - x0))
    assert (sides >= 0.15 * short).all() and (sides <= 0.75 * short).all()
    for by0, bx0, by1, bx1 in boxes.numpy() * [height, width, height, width]:
        inter_h = np.clip(np.minimum(y1, by1) - np.maximum(y0, by0), 0, None)
        inter_w = np.clip(np.minimum(x1, bx1) - np.maximum(x0, bx0), 0, None)
        covered = inter_h * inter_w / ((by1 - by0) * (bx1 - bx0))
        assert (covered <= background.BACKGROUND_MAX_OVERLAP + 0.01).all()  # rounding to pixels
    again = background.background_boxes(boxes, height, width, 8, tf.constant([1, 2])).numpy()
    assert np.array_equal(found, again)  # the same seed, the same windows


def test_background_windows_are_counted_without_decoding_and_labelled(synthetic_data_dir):
    photos = data.load_photos(synthetic_data_dir, "validation")
    windows = list(background.background_windows(photos, 32, 3, 27, seed=7))
    assert len(windows) == background.count_background_windows(photos, 3, seed=7) > 0
    assert all(label.numpy() == 27 and image.shape == (32, 32, 3) for image, label in windows)


def test_training_with_background_learns_the_class_none(synthetic_data_dir, tmp_path):
    config = tiny_config(
        synthetic_data_dir, tmp_path, background=2, epochs=2, fine_tune_epochs=0, steps_per_epoch=2
    )
    result = train(config)
    bundle = load_bundle(result.bundle_dir)
    assert bundle.metadata.background_class == "none"
    assert bundle.class_names[-1] == "none" and len(bundle.class_names) == 28
    assert bundle.model.output_shape[-1] == 28
    test = result.metrics["test"]
    assert test["num_logo"] > 0  # brands still scored on the crops test
    # Over the brands only (what whole-photo mode answers), no crop can be called none.
    assert test["brand_accuracy"] >= test["accuracy"]
    assert 0.0 <= test["called_background"] <= 1.0
    # `logo-batch evaluate` on the crops with a report folder: 28 columns, 28 rows.
    from logo_batch.evaluation.evaluate import evaluate_bundle

    report = tmp_path / "crops_report"
    metrics = evaluate_bundle(
        result.bundle_dir, synthetic_data_dir, config="crops", output_dir=report
    )
    assert metrics["brand_accuracy"] == pytest.approx(test["brand_accuracy"])
    per_class = pd.read_csv(report / "test_per_class.csv")
    assert list(per_class["class"]) == bundle.class_names
    assert (report / "test_confusion_matrix.png").stat().st_size > 0


def test_background_metrics_count_brands_only():
    from logo_batch.evaluation.metrics import background_metrics

    scores = np.array([[0.5, 0.1, 0.4], [0.1, 0.3, 0.6], [0.2, 0.7, 0.1]])  # column 2: none
    labels = np.array([0, 1, 0])
    metrics = background_metrics(scores, labels, background=2)
    assert metrics["brand_accuracy"] == 2 / 3  # row 2's best brand is 1 (right), row 3 wrong
    assert metrics["called_background"] == 1 / 3
