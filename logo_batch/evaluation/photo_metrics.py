"""Whole-photo metrics: brand scores of photos, the rejection threshold, the trade-off.

A photo's answer is its top brand (max over its windows, :mod:`logo_batch.inference.whole_photo`)
when that score reaches the threshold, else ``none``. The threshold is chosen on the
validation photos (all hold a logo) plus windows with no logo cut from the same
photos (:func:`logo_batch.data.background.background_crops`), each taken as a photo: the
threshold that maximizes (validation photos correct and accepted + negatives
rejected) / 2. The query set's ``none`` photos are test data and never used for it.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from logo_batch.data import background
from logo_batch.data import pipeline as data_lib
from logo_batch.evaluation.metrics import compute_metrics
from logo_batch.inference.preprocessing import decode_image_tf
from logo_batch.inference.whole_photo import DEFAULT_BATCH_SIZE, brand_names, classify_photos
from tfds_flickr27 import DATASET_NAME, IMAGES

NEGATIVES_PER_PHOTO = 2
NEGATIVES_SEED = 1_000_003  # not a training seed: other windows than training saw


@dataclass(frozen=True)
class PhotoModel:
    """What whole-photo scoring needs of a model and its bundle metadata."""

    model: keras.Model
    image_size: int
    class_names: list[str]
    background_class: str | None
    batch_size: int = DEFAULT_BATCH_SIZE  # windows per model call

    @property
    def brands(self) -> list[str]:
        return brand_names(self.class_names, self.background_class)

    def brand_scores(self, images) -> np.ndarray:
        """``float32 [N, K]``: per photo, each brand's max over the photo's windows."""
        results = classify_photos(
            self.model,
            images,
            self.image_size,
            self.class_names,
            self.background_class,
            batch_size=self.batch_size,
        )
        return np.stack([r.brand_scores for r in results]) if results else np.zeros((0, 0))


def split_photos(
    data_dir: str | os.PathLike, split: str, dataset: str = DATASET_NAME
) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """Decoded photos (``uint8``) of an ``images`` split, and their labels."""
    info = data_lib.load_split(data_dir, IMAGES, split, dataset=dataset)
    labels = data_lib.split_labels(info.records)
    images = info.records.map(lambda jpeg, _: decode_image_tf(jpeg)).as_numpy_iterator()
    return images, labels


def negative_crops(
    data_dir: str | os.PathLike, split: str, dataset: str = DATASET_NAME
) -> Iterator[np.ndarray]:
    """Windows with no logo (``uint8``) cut from an ``images`` split's photos."""
    photos = data_lib.load_photos(data_dir, split, dataset=dataset)
    crops = background.background_crops(photos, NEGATIVES_PER_PHOTO, NEGATIVES_SEED)
    return crops.as_numpy_iterator()


def choose_photo_threshold(scores: np.ndarray, labels: np.ndarray, negatives: np.ndarray) -> float:
    """The top-score threshold maximizing (photos correct and accepted + negatives
    rejected) / 2; ``scores`` of logo photos ``[N, K]``, ``negatives`` ``[M, K]``."""
    top, correct = scores.max(axis=1), scores.argmax(axis=1) == labels
    negative_top = negatives.max(axis=1) if negatives.size else np.zeros(0)
    candidates = np.unique(np.concatenate([top, negative_top, [0.0]]))
    best, best_value = 0.0, -1.0
    for threshold in candidates:
        accepted = np.mean(correct & (top >= threshold))
        rejected = np.mean(negative_top < threshold) if negative_top.size else 0.0
        value = (accepted + rejected) / 2
        if value > best_value:
            best, best_value = float(threshold), value
    return best


def tradeoff(scores: np.ndarray, labels: np.ndarray, num_points: int = 101) -> dict[str, Any]:
    """Logo photos correct and accepted vs ``none`` photos rejected, as the threshold moves.

    ``labels >= K`` are ``none`` photos.
    """
    thresholds = np.linspace(0.0, 1.0, num_points)
    logo = labels < scores.shape[1]
    top, correct = scores.max(axis=1), scores.argmax(axis=1) == labels
    return {
        "thresholds": thresholds.tolist(),
        "logo_accepted_and_correct": [
            float(np.mean((correct & (top >= t))[logo])) for t in thresholds
        ],
        "none_rejected": [
            float(np.mean(top[~logo] < t)) if (~logo).any() else float("nan") for t in thresholds
        ],
    }


def calibrate(
    photo_model: PhotoModel,
    data_dir: str | os.PathLike,
    split: str = "validation",
    dataset: str = DATASET_NAME,
) -> tuple[float, dict[str, Any]]:
    """The threshold chosen on a validation split (its photos and negatives from them)
    and the metrics there: ``none_rejected`` is the rate on the negatives."""
    images, labels = split_photos(data_dir, split, dataset)
    scores = photo_model.brand_scores(images)
    negatives = photo_model.brand_scores(negative_crops(data_dir, split, dataset))
    threshold = choose_photo_threshold(scores, labels, negatives)
    num_brands = len(photo_model.brands)
    all_scores = np.concatenate([scores, negatives]) if negatives.size else scores
    all_labels = np.concatenate([labels, np.full(len(negatives), num_brands)])
    metrics = compute_metrics(all_scores, all_labels, threshold)
    metrics["num_negative_windows"] = int(len(negatives))
    return threshold, metrics


def evaluate_photos(
    photo_model: PhotoModel,
    data_dir: str | os.PathLike,
    split: str,
    threshold: float,
    dataset: str = DATASET_NAME,
) -> tuple[dict[str, Any], np.ndarray, np.ndarray]:
    """Whole-photo metrics of an ``images`` split at ``threshold``; also the brand
    scores and labels (``none`` photos labelled K)."""
    images, labels = split_photos(data_dir, split, dataset)
    scores = photo_model.brand_scores(images)
    metrics = compute_metrics(scores, labels, threshold)
    metrics["mode"] = "whole"
    return metrics, scores, labels
