"""Metrics of model scores: top-1/top-5 accuracy, per-class precision/recall/F1, the
open-set figures at a rejection threshold, and the threshold rule.

Logo examples (labels below the number of model classes) give top-1/top-5 accuracy and
a per-class table. Examples of the ``none`` class (FlickrLogos-27's query set has 135
no-logo images; a folder dataset has its ``none/`` photos) are counted as *rejected*
when the model's top score is below the threshold.

Threshold rule (chosen on the validation split at training time, see
:func:`choose_threshold`): the highest confidence that still keeps ``keep`` (95 %) of
the correct validation predictions, i.e. the ``1 - keep`` quantile of their top scores.
Pure functions of arrays: evaluation of crops (:mod:`~logo_batch.evaluation.evaluate`),
of whole photos (:mod:`~logo_batch.evaluation.photo_metrics`) and training all use them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

DEFAULT_KEEP = 0.95


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


def flickrlogos_metrics(
    scores: np.ndarray, labels: np.ndarray, threshold: float
) -> dict[str, float]:
    """The FlickrLogos-32 SDK's classification scores (``fl_eval_classification.py``),
    counted as it counts them: a photo is classified as a logo when its top score reaches
    ``threshold`` (``labels >= C``: photos with no logo). ``recognition_recall``: logo
    photos given their brand / logo photos; ``recognition_precision``: logo photos given
    their brand / logo photos given any brand (no-logo photos given one do not count);
    ``detection_specificity``: no-logo photos rejected / no-logo photos;
    ``recognition_accuracy``: (logo photos given their brand + no-logo photos rejected) /
    all photos."""
    num_classes = scores.shape[1]
    logo = labels < num_classes
    accepted = scores.max(axis=1) >= threshold
    right = accepted & (scores.argmax(axis=1) == labels) & logo
    given = accepted & logo
    rejected = ~accepted & ~logo
    return {
        "recognition_recall": float(right.sum() / max(logo.sum(), 1)),
        "recognition_precision": float(right.sum() / given.sum()) if given.any() else float("nan"),
        "detection_specificity": float(rejected.sum() / (~logo).sum())
        if (~logo).any()
        else float("nan"),
        "recognition_accuracy": float((right.sum() + rejected.sum()) / max(labels.size, 1)),
    }


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
