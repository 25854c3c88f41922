"""Metrics, the rejection threshold rule, and the report files."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from logo_batch.evaluation import evaluate
from logo_batch.evaluation.metrics import (
    choose_threshold,
    compute_metrics,
    confusion_matrix,
    per_class_table,
)


def _scores(rows):
    return np.array(rows, dtype=np.float32)


def test_threshold_keeps_the_requested_share_of_correct_predictions():
    rng = np.random.default_rng(0)
    top = rng.uniform(0.5, 1.0, 200)
    scores = np.stack([top, 1 - top], axis=1)
    labels = np.zeros(200, np.int64)
    labels[:20] = 1  # wrong predictions do not count
    threshold = choose_threshold(scores, labels, keep=0.95)
    correct_top = top[20:]
    assert threshold > np.sort(top[:20])[0]
    assert np.mean(correct_top >= threshold) >= 0.95
    assert np.mean(correct_top > threshold) < 0.95  # the highest such threshold


def test_threshold_without_correct_predictions_accepts_all():
    assert choose_threshold(_scores([[0.9, 0.1]]), np.array([1])) == 0.0


def test_metrics_split_logo_and_none_images():
    scores = _scores([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.55, 0.45], [0.95, 0.05]])
    labels = np.array([0, 0, 1, 2, 2])  # label 2 = none (>= number of classes)
    m = compute_metrics(scores, labels, threshold=0.7)
    assert m["num_logo"] == 3 and m["num_none"] == 2
    assert m["accuracy"] == pytest.approx(1 / 3)
    assert m["none_rejected"] == pytest.approx(0.5)
    assert m["logo_accepted_and_correct"] == pytest.approx(1 / 3)
    assert m["open_set_accuracy"] == pytest.approx(2 / 5)


def test_per_class_table():
    matrix = confusion_matrix(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
    assert matrix.tolist() == [[1, 1], [0, 2]]
    table = per_class_table(matrix, ["a", "b"])
    assert table["precision"].tolist() == pytest.approx([1.0, 2 / 3])
    assert table["recall"].tolist() == pytest.approx([0.5, 1.0])
    assert table["f1"].tolist() == pytest.approx([2 / 3, 0.8])


def test_write_report(tmp_path):
    scores = _scores([[0.9, 0.1], [0.3, 0.7], [0.5, 0.5]])
    labels = np.array([0, 1, 2])
    metrics = evaluate.write_report(scores, labels, ["a", "b"], tmp_path, threshold=0.6)
    assert json.loads((tmp_path / "test_metrics.json").read_text()) == metrics
    assert list(pd.read_csv(tmp_path / "test_per_class.csv")["class"]) == ["a", "b"]
    assert (tmp_path / "test_confusion_matrix.png").stat().st_size > 0
