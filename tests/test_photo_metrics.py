"""Whole-photo metrics: the validation-chosen threshold and the rejection trade-off."""

from __future__ import annotations

import json

import numpy as np
import pytest
from training_support import tiny_config

from logo_batch.cli import main
from logo_batch.evaluation import photo_metrics
from logo_batch.training import train


def test_threshold_separates_confident_logos_from_negatives():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 50)
    scores = np.full((50, 4), 0.02)
    scores[np.arange(50), labels] = rng.uniform(0.6, 0.95, 50)  # right and confident
    negatives = rng.uniform(0.05, 0.4, (80, 4))
    threshold = photo_metrics.choose_photo_threshold(scores, labels, negatives)
    assert negatives.max() < threshold <= scores.max(axis=1).min()


def test_threshold_trades_off_when_the_two_overlap():
    labels = np.zeros(4, dtype=int)
    scores = np.array([[0.9, 0.1], [0.8, 0.2], [0.3, 0.1], [0.2, 0.1]])  # 2 weak logos
    negatives = np.array([[0.25, 0.1], [0.1, 0.05]])
    threshold = photo_metrics.choose_photo_threshold(scores, labels, negatives)
    # 0.3 accepts 3 of 4 logos and rejects both negatives: (0.75 + 1) / 2, the best.
    assert threshold == pytest.approx(0.3)


def test_tradeoff_moves_monotonically_with_the_threshold():
    rng = np.random.default_rng(1)
    scores = rng.dirichlet(np.ones(5), 40)
    labels = np.concatenate([rng.integers(0, 5, 30), np.full(10, 5)])  # 10 none photos
    curve = photo_metrics.tradeoff(scores, labels)
    assert np.all(np.diff(curve["none_rejected"]) >= 0)
    assert np.all(np.diff(curve["logo_accepted_and_correct"]) <= 0)
    assert curve["none_rejected"][0] == 0.0 and curve["none_rejected"][-1] == 1.0


def test_background_run_chooses_its_threshold_on_photos_and_evaluate_uses_it(
    synthetic_data_dir, tmp_path, capsys
):
    config = tiny_config(
        synthetic_data_dir, tmp_path / "run", background=2, epochs=2, fine_tune_epochs=0,
        steps_per_epoch=2,
    )  # fmt: skip
    result = train(config)
    validation = result.metrics["validation_photos"]
    assert validation["num_negative_windows"] > 0 and "none_rejected" in validation
    out = tmp_path / "eval"
    code = main(
        ["evaluate", str(result.bundle_dir), "--data-dir", str(synthetic_data_dir),
         "--config", "images", "--split", "test", "--output-dir", str(out)]
    )  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    assert code == 0 and metrics["mode"] == "whole"
    assert metrics["threshold"] == validation["threshold"]  # chosen at training, on photos
    assert metrics["num_none"] > 0 and 0.0 <= metrics["none_rejected"] <= 1.0
    assert (out / "test_rejection_tradeoff.png").stat().st_size > 0
    saved = json.loads((out / "test_metrics.json").read_text())
    assert len(saved["tradeoff"]["thresholds"]) == len(saved["tradeoff"]["none_rejected"])
