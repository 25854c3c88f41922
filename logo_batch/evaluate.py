"""Metrics of a model on a dataset split, and ``logo-batch evaluate``.

Logo images (labels below the number of model classes) give top-1/top-5 accuracy and
a per-class precision/recall/F1 table. Images of the ``none`` class (FlickrLogos-27's
query set has 135 no-logo images; a folder dataset has its ``none/`` photos) are
counted as *rejected* when the model's top score is below the bundle's rejection
threshold. The bundle's brands must be the dataset's, in the same order.

Threshold rule (chosen on the validation split at training time, see
:func:`choose_threshold`): the highest confidence that still keeps ``keep`` (95 %) of
the correct validation predictions, i.e. the ``1 - keep`` quantile of their top scores.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from logo_batch import data as data_lib
from logo_batch.cli_options import add_precision_option, matching_args
from logo_batch.predict import predict_scores, with_precision
from tfds_flickr27 import CONFIG_NAMES, DATASET_NAME, IMAGES

DEFAULT_KEEP = 0.95


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


def choose_threshold(scores: np.ndarray, labels: np.ndarray, keep: float = DEFAULT_KEEP) -> float:
    """Highest top-score threshold keeping ``keep`` of the correct predictions (0 if none)."""
    if not 0.0 < keep <= 1.0:
        raise ValueError(f"keep must be in (0, 1], not {keep}")
    scores = np.asarray(scores)
    correct = scores.argmax(axis=1) == labels
    top = np.sort(scores.max(axis=1)[correct])
    if top.size == 0:
        return 0.0
    return float(top[int(math.floor((1.0 - keep) * top.size))])


def confusion_matrix(labels: np.ndarray, predicted: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts ``[true, predicted]``."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predicted), 1)
    return matrix


def per_class_table(matrix: np.ndarray, class_names: Sequence[str]) -> pd.DataFrame:
    """Precision, recall, F1 and support per class from a confusion matrix."""
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0)
    support = matrix.sum(axis=1)
    precision = np.divide(tp, predicted, out=np.zeros_like(tp), where=predicted > 0)
    recall = np.divide(tp, support, out=np.zeros_like(tp), where=support > 0)
    denom = precision + recall
    f1 = np.divide(2 * precision * recall, denom, out=np.zeros_like(tp), where=denom > 0)
    return pd.DataFrame(
        {
            "class": list(class_names),
            "precision": precision,
            "recall": recall,
            "f1": f1,
            "support": support,
        }
    )


def compute_metrics(
    scores: np.ndarray, labels: np.ndarray, threshold: float | None = None
) -> dict[str, Any]:
    """Metrics of scores ``[N, C]``; labels ``>= C`` are no-logo images to reject."""
    num_classes = scores.shape[1]
    logo = labels < num_classes
    metrics: dict[str, Any] = {"num_examples": int(labels.size), "num_logo": int(logo.sum())}
    if logo.any():
        s, y = scores[logo], labels[logo]
        top5 = np.argsort(-s, axis=1)[:, : min(5, num_classes)]
        metrics["accuracy"] = float(np.mean(s.argmax(axis=1) == y))
        metrics["top5_accuracy"] = float(np.mean((top5 == y[:, None]).any(axis=1)))
        table = per_class_table(
            confusion_matrix(y, s.argmax(axis=1), num_classes), range(num_classes)
        )
        metrics["macro_f1"] = float(table.loc[table["support"] > 0, "f1"].mean())
    if threshold is not None:
        accepted = scores.max(axis=1) >= threshold
        correct = scores.argmax(axis=1) == labels
        metrics["threshold"] = float(threshold)
        if logo.any():
            metrics["logo_accepted"] = float(np.mean(accepted[logo]))
            metrics["logo_accepted_and_correct"] = float(np.mean((accepted & correct)[logo]))
        if (~logo).any():
            metrics["num_none"] = int((~logo).sum())
            metrics["none_rejected"] = float(np.mean(~accepted[~logo]))
            metrics["open_set_accuracy"] = float(
                np.mean(np.where(logo, accepted & correct, ~accepted))
            )
    return metrics


def background_metrics(scores: np.ndarray, labels: np.ndarray, background: int) -> dict[str, float]:
    """For a model with a background class (column ``background``), on logo examples:
    top-1 over the brands only (the answer whole-photo mode gives) and how many were
    called background."""
    logo = labels < scores.shape[1]
    logo &= labels != background
    brands = np.delete(scores[logo], background, axis=1)
    brand_labels = labels[logo] - (labels[logo] > background)
    return {
        "brand_accuracy": float(np.mean(brands.argmax(axis=1) == brand_labels)),
        "called_background": float(np.mean(scores[logo].argmax(axis=1) == background)),
    }


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
    from logo_batch.plots import plot_confusion_matrix

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
    batch_size: int = 64,
    threshold: float | None = None,
    output_dir: str | os.PathLike | None = None,
    mode: str = "auto",
    precision: str = "auto",
) -> dict[str, Any]:
    """Evaluates a bundle on a TFDS split (threshold: the bundle's unless given).

    ``mode``: ``single`` (each example resized whole, as the crops were trained),
    ``whole`` (photos of the ``images`` config scored over windows,
    :mod:`logo_batch.photo_metrics`), or ``auto`` (whole for the ``images`` config with
    a bundle that learned a background class). ``precision``: what the model runs in,
    as ``logo-batch predict`` runs it (:func:`logo_batch.predict.with_precision`).
    """
    from logo_batch.bundle import load_bundle

    bundle, precision = with_precision(load_bundle(bundle_dir), precision)
    background = bundle.metadata.background_class
    if mode == "auto":
        mode = "whole" if config == IMAGES and background else "single"
    config = IMAGES if mode == "whole" else config
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
    if mode == "whole":
        metrics = _evaluate_whole(bundle, data_dir, split, dataset, threshold, output_dir)
        return {**metrics, "precision": precision}
    if threshold is None:
        threshold = bundle.metadata.rejection_threshold
    scores, labels = predict_dataset(bundle.model, info.records, bundle.image_size, batch_size)
    extra = {
        "bundle": os.fspath(bundle_dir),
        "dataset": f"{dataset}/{config}",
        "split": split,
        "precision": precision,
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


def _evaluate_whole(bundle, data_dir, split, dataset, threshold, output_dir) -> dict[str, Any]:
    """Whole-photo evaluation of an ``images`` split; with ``output_dir``, the metrics
    and the rejection trade-off plot (chosen threshold marked)."""
    from logo_batch import photo_metrics
    from logo_batch.plots import plot_rejection_tradeoff

    meta = bundle.metadata
    photo_model = photo_metrics.PhotoModel(
        bundle.model, meta.image_size, list(meta.class_names), meta.background_class
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


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle folder (made by logo-batch train)")
    parser.add_argument("--data-dir", required=True, help="TFDS data_dir with the dataset")
    parser.add_argument("--config", default=IMAGES, choices=CONFIG_NAMES)
    parser.add_argument("--split", default="test")
    parser.add_argument(
        "--dataset",
        default=DATASET_NAME,
        metavar="NAME",
        help=f"TFDS dataset in --data-dir (default {DATASET_NAME}; your own: the NAME "
        "given to logo-batch dataset build)",
    )
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threshold", type=float, default=None, help="rejection threshold (default: the bundle's)"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="also write metrics JSON and plots (per-class CSV and confusion matrix; "
        "whole photos: the rejection trade-off)",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "whole", "single"),
        default="auto",
        help="whole: photos scored over windows; single: each example resized whole; "
        "auto: whole for --config images with a bundle that learned a background class",
    )
    add_precision_option(parser)


def run(args: argparse.Namespace) -> int:
    try:
        metrics = evaluate_bundle(args.bundle, **matching_args(evaluate_bundle, args))
    except (FileNotFoundError, ValueError) as error:
        print(f"logo-batch evaluate: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2))
    return 0
