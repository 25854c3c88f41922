"""The end of a run: a float32 copy of the model, its metrics and the bundle."""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from logo_batch.evaluation import evaluate, photo_metrics
from logo_batch.evaluation.metrics import background_metrics, choose_threshold, compute_metrics
from logo_batch.evaluation.tflite_export import CHECK_INPUTS, float32_engine
from logo_batch.inference import engines
from logo_batch.inference.bundle import BundleMetadata, save_bundle
from logo_batch.training import models
from logo_batch.training.config import TrainConfig
from logo_batch.training.datasets import TrainingData
from logo_batch.training.run_folder import BUNDLE_DIR, METRICS_FILE, atomic_write

PHOTO_RULE = (
    "whole photos: the top brand score maximizing (validation photos correct and accepted "
    "+ no-logo windows of validation photos rejected) / 2"
)


def export_model(cfg: TrainConfig, num_classes: int, weights: list[np.ndarray]) -> keras.Model:
    """A float32, non-distributed copy of the trained model for the bundle."""
    keras.mixed_precision.set_global_policy("float32")
    export = models.build_model(
        cfg.backbone, num_classes, cfg.image_size, models.WEIGHTS_NONE, cfg.head, cfg.dropout
    )
    export.set_weights(weights)
    return export


def float32_tflite(
    cfg: TrainConfig, model: keras.Model, datasets: TrainingData
) -> tuple[bytes | None, dict[str, Any] | None]:
    """``model.tflite``'s bytes when its check kept the model's scores (else None) and
    the check's figures; ``(None, None)`` when ``cfg`` exports no TensorFlow Lite model."""
    if not cfg.export_tflite:
        return None, None
    content, figures = float32_engine(model, check_inputs(datasets.validation))
    return (content if figures["kept_scores"] else None), figures


def evaluate_model(
    cfg: TrainConfig,
    model: keras.Model,
    datasets: TrainingData,
    work: Path,
    photo_engine: Any = None,
) -> tuple[dict[str, Any], float]:
    """Validation and test metrics (test report files in ``work``) and the threshold
    for ``unknown``, chosen on validation. ``photo_engine`` (default ``model``) scores
    the validation photos' windows: the bundle's TensorFlow Lite model, which gives the
    model's scores (checked) at about 3x the TensorFlow graph's speed on a CPU."""
    splits, class_names = datasets.splits, datasets.class_names
    val_scores, val_labels = evaluate.predict_dataset(
        model, splits["validation"].records, cfg.image_size, cfg.batch_size
    )
    threshold = choose_threshold(val_scores, val_labels, cfg.rejection_keep)
    val_metrics = compute_metrics(val_scores, val_labels, threshold)
    test_scores, test_labels = evaluate.predict_dataset(
        model, splits["test"].records, cfg.image_size, cfg.batch_size
    )
    test_metrics = evaluate.write_report(
        test_scores, test_labels, class_names, work, threshold=threshold, prefix="test"
    )
    metrics = {"validation": val_metrics, "test": test_metrics}
    if datasets.background_class:  # whole photos: the threshold is chosen on photos
        index = class_names.index(datasets.background_class)
        test_metrics.update(background_metrics(test_scores, test_labels, index))
        photo_model = photo_metrics.PhotoModel(
            model if photo_engine is None else photo_engine,
            cfg.image_size,
            class_names,
            datasets.background_class,
        )
        split = splits["validation"].split.split("[", 1)[0]
        threshold, metrics["validation_photos"] = photo_metrics.calibrate(
            photo_model, cfg.data_dir, split, cfg.dataset
        )
    return metrics, threshold


def check_inputs(validation: tf.data.Dataset, count: int = CHECK_INPUTS) -> np.ndarray:
    """The first ``count`` validation model inputs (``float32 [N, S, S, 3]``)."""
    batches = [images.numpy() for images, *_ in validation.take(-(-count // 8))]
    return np.concatenate(batches)[:count] if batches else np.zeros((0, 1, 1, 3), np.float32)


def whole_photo_settings(validation_photos: dict[str, Any]) -> dict[str, Any]:
    """What whole-photo mode keeps from the validation photos: the cascade chosen there."""
    cascade = validation_photos.get("cascade")
    return (
        {"cascade": {"accept": cascade["accept"], "reject": cascade["reject"]}} if cascade else {}
    )


def write_bundle(
    cfg: TrainConfig,
    model: keras.Model,
    datasets: TrainingData,
    metrics: dict[str, Any],
    threshold: float,
    work: Path,
    history: pd.DataFrame,
    training: dict[str, Any],
    tflite: tuple[bytes | None, dict[str, Any] | None] = (None, None),
) -> Path:
    """Writes the bundle (atomically) and ``metrics.json``; returns the bundle folder.

    ``training`` holds how the run trained (phases, strategy, precision), recorded in
    the bundle's metadata with the configuration and the epoch times; ``tflite``:
    :func:`float32_tflite`'s model and figures.
    """
    splits = datasets.splits
    info = splits["train"]
    metadata = BundleMetadata(
        class_names=datasets.class_names,
        background_class=datasets.background_class,
        image_size=cfg.image_size,
        backbone=cfg.backbone,
        weights=os.fspath(cfg.weights),
        head=cfg.head,
        dataset={
            "name": info.dataset,
            "config": info.config,
            "version": info.version,
            "class_names": info.class_names,  # the dataset's labels: its brands, then none
            "splits": {
                name: {"split": s.split, "num_examples": s.num_examples}
                for name, s in splits.items()
            },
        },
        metrics=metrics,
        rejection_threshold=threshold,
        whole_photo=whole_photo_settings(metrics.get("validation_photos", {})),
        training={
            "config": dataclasses.asdict(cfg),
            **training,
            "epoch_seconds": history["seconds"].tolist() if "seconds" in history else [],
            "rejection_rule": PHOTO_RULE
            if datasets.background_class
            else f"top score keeping {cfg.rejection_keep:.0%} of correct validation predictions",
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    )
    files = {}
    content, figures = tflite
    if figures is not None:
        metadata.engines[engines.TFLITE_FLOAT32] = figures
    if content is not None:
        files[engines.TFLITE_FILE] = content
    bundle_dir = save_bundle(
        model, metadata, work / BUNDLE_DIR, export_serving=cfg.export_serving, files=files
    )
    atomic_write(work / METRICS_FILE, json.dumps(metrics, indent=2) + "\n")
    return bundle_dir
