"""A bundle evaluated on a dataset split: its scores, metrics and report files.

Crops or photos resized whole are scored here (:func:`predict_dataset`) and measured
by :mod:`~logo_batch.evaluation.metrics`; photos seen through windows by
:mod:`~logo_batch.evaluation.photo_metrics`. ``logo-batch evaluate`` calls
:func:`evaluate_bundle`. The bundle's brands must be the dataset's, in the same order;
``none`` images (FlickrLogos-27's query set has 135 no-logo images; a folder dataset
has its ``none/`` photos) count as rejected below the threshold.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from logo_batch.data import pipeline as data_lib
from logo_batch.evaluation import photo_metrics
from logo_batch.evaluation.metrics import (
    background_metrics,
    compute_metrics,
    confusion_matrix,
    per_class_table,
)
from logo_batch.inference.checks import open_checked
from logo_batch.inference.engines import ENGINE_PRECISION, predict_scores
from logo_batch.inference.predict import AUTO, WHOLE, effective_min_score, resolve_mode
from logo_batch.inference.whole_photo import Cascade
from tfds_flickr27 import CROPS, DATASET_NAME, IMAGES


def predict_dataset(
    model: keras.Model, records, image_size: int, batch_size: int = 64
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax scores ``[N, C]`` and labels ``[N]`` of ``(jpeg, label)`` records, in order."""
    ds = data_lib.make_dataset(records, image_size=image_size, batch_size=batch_size, cache="none")
    scores, labels = [], []
    for images, batch_labels in ds:
        scores.append(predict_scores(model, images.numpy()))
        labels.append(batch_labels.numpy())
    if not scores:
        raise ValueError("the split is empty: nothing to evaluate")
    return np.concatenate(scores), np.concatenate(labels).astype(np.int64)


def write_report(
    scores: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    output_dir: str | os.PathLike,
    *,
    threshold: float | None = None,
    prefix: str = "test",
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Writes ``{prefix}_metrics.json``, ``_per_class.csv``, ``_confusion_matrix.png``."""
    from logo_batch.evaluation.plots import plot_confusion_matrix

    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = {**(extra or {}), **compute_metrics(scores, labels, threshold)}
    logo = labels < scores.shape[1]
    matrix = confusion_matrix(labels[logo], scores[logo].argmax(axis=1), scores.shape[1])
    per_class_table(matrix, class_names).to_csv(
        out / f"{prefix}_per_class.csv", index=False, float_format="%.4f"
    )
    plot_confusion_matrix(matrix, class_names, out / f"{prefix}_confusion_matrix.png", prefix)
    (out / f"{prefix}_metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    return metrics


def evaluate_bundle(
    bundle_dir: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    config: str = IMAGES,
    split: str = "test",
    dataset: str = DATASET_NAME,
    batch_size: int = 32,
    min_score: float | str | None = None,
    output_dir: str | os.PathLike | None = None,
    mode: str = AUTO,
    precision: str = AUTO,
) -> dict[str, Any]:
    """Evaluates a bundle on a TFDS split.

    ``mode`` (:func:`~logo_batch.inference.predict.resolve_mode`, the examples of the
    ``crops`` config being crops): ``single`` (each example resized whole, as the crops
    were trained), ``whole`` (photos of the ``images`` config scored over windows,
    :mod:`logo_batch.evaluation.photo_metrics`). ``min_score``: the rejection threshold,
    as ``predict`` takes it (:func:`~logo_batch.inference.predict.effective_min_score`);
    in whole mode by default the bundle's when it was chosen on validation photos, else
    chosen here the same way. ``batch_size``: model inputs per model call.
    ``precision``: what the model runs in, as ``logo-batch predict`` runs it
    (:func:`logo_batch.inference.checks.open_checked`); the metrics name the
    engine and the precision it computes in.
    """
    bundle, engine = open_checked(bundle_dir, precision)
    precision = ENGINE_PRECISION[engine]
    background = bundle.metadata.background_class
    mode = resolve_mode(mode, bundle.metadata, crops=config == CROPS)
    config = IMAGES if mode == WHOLE else config
    info = data_lib.load_split(data_dir, config, split, dataset=dataset)
    logo_names = info.logo_class_names
    if [n for n in bundle.class_names if n != background] != logo_names:
        trained = bundle.metadata.dataset.get("name", dataset)
        hint = (
            f" (the bundle trained on {trained}: --dataset {trained})" if trained != dataset else ""
        )
        raise ValueError(
            f"{bundle_dir}: bundle classes {bundle.class_names} differ from "
            f"{dataset}/{config} classes {logo_names}{hint}"
        )
    if mode == WHOLE:
        given = min_score is not None
        threshold = effective_min_score(min_score, mode, bundle.metadata) if given else None
        metrics = _evaluate_whole(
            bundle, data_dir, split, dataset, threshold, output_dir, batch_size
        )
        return {**metrics, "precision": precision, "engine": engine}
    threshold = effective_min_score(min_score, mode, bundle.metadata)
    scores, labels = predict_dataset(bundle.model, info.records, bundle.image_size, batch_size)
    extra = {
        "bundle": os.fspath(bundle_dir),
        "dataset": f"{dataset}/{config}",
        "split": split,
        "precision": precision,
        "engine": engine,
    }
    if background:
        extra.update(background_metrics(scores, labels, bundle.class_names.index(background)))
    if output_dir is not None:  # one row and column per model output, none included
        return write_report(
            scores,
            labels,
            bundle.class_names,
            output_dir,
            threshold=threshold,
            prefix=split,
            extra=extra,
        )
    return {**extra, **compute_metrics(scores, labels, threshold)}


def _evaluate_whole(
    bundle, data_dir, split, dataset, threshold, output_dir, batch_size
) -> dict[str, Any]:
    """Whole-photo evaluation of an ``images`` split; with ``output_dir``, the metrics
    and the rejection trade-off plot (chosen threshold marked)."""
    from logo_batch.evaluation.plots import plot_rejection_tradeoff

    meta = bundle.metadata
    photo_model = photo_metrics.PhotoModel(
        bundle.model,
        meta.image_size,
        list(meta.class_names),
        meta.background_class,
        batch_size,
        Cascade.of(meta),
    )
    validation = None
    if threshold is None and "validation_photos" in meta.metrics:
        threshold = meta.rejection_threshold  # chosen on validation photos at training
    elif threshold is None:
        threshold, validation = photo_metrics.calibrate(photo_model, data_dir, dataset=dataset)
    metrics, scores, labels = photo_metrics.evaluate_photos(
        photo_model, data_dir, split, threshold, dataset
    )
    extra = {"bundle": os.fspath(bundle.path), "dataset": f"{dataset}/{IMAGES}", "split": split}
    metrics = {**extra, **metrics}
    if validation is not None:
        metrics["validation_photos"] = validation
    if output_dir is not None:
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        curve = photo_metrics.tradeoff(scores, labels)
        chosen = (
            threshold,
            metrics.get("none_rejected", float("nan")),
            metrics.get("logo_accepted_and_correct", float("nan")),
        )
        plot_rejection_tradeoff(
            curve, chosen, out / f"{split}_rejection_tradeoff.png", f"{split}: whole photos"
        )
        (out / f"{split}_metrics.json").write_text(
            json.dumps({**metrics, "tradeoff": curve}, indent=2) + "\n"
        )
    return metrics
