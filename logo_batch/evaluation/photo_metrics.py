"""Whole-photo metrics: brand scores of photos, the rejection threshold, the trade-off.

A photo's answer is its top brand (max over its windows, :mod:`logo_batch.inference.whole_photo`)
when that score reaches the threshold, else ``none``. The threshold is chosen on the
validation photos (all hold a logo) plus windows with no logo cut from the same
photos (:func:`logo_batch.data.background.background_crops`), each taken as a photo: the
threshold that maximizes (validation photos correct and accepted + negatives
rejected) / 2. The query set's ``none`` photos are test data and never used for it.
The whole-photo cascade (:class:`~logo_batch.inference.whole_photo.Cascade`) is chosen on
the same photos and negatives (:func:`choose_cascade`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

from logo_batch.data import background
from logo_batch.data import pipeline as data_lib
from logo_batch.evaluation.metrics import compute_metrics, flickrlogos_metrics
from logo_batch.inference.preprocessing import decode_image_tf
from logo_batch.inference.whole_photo import (
    DEFAULT_BATCH_SIZE,
    Cascade,
    PhotoScores,
    brand_names,
    classify_photos,
    decode_side,
)
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
    cascade: Cascade | None = None  # None: every window of every photo

    @property
    def decode_side(self) -> int:
        """The shortest side photos are decoded at, at least (as in predict)."""
        return decode_side(self.image_size)

    @property
    def brands(self) -> list[str]:
        return brand_names(self.class_names, self.background_class)

    def results(self, images) -> list[PhotoScores]:
        """Each photo's :class:`~logo_batch.inference.whole_photo.PhotoScores`."""
        return classify_photos(
            self.model,
            images,
            self.image_size,
            self.class_names,
            self.background_class,
            batch_size=self.batch_size,
            cascade=self.cascade,
        )

    def brand_scores(self, images) -> np.ndarray:
        """``float32 [N, K]``: per photo, each brand's max over the photo's windows."""
        return _brand_scores(self.results(images))


def _brand_scores(results: list[PhotoScores]) -> np.ndarray:
    return np.stack([r.brand_scores for r in results]) if results else np.zeros((0, 0))


def split_photos(
    data_dir: str | os.PathLike,
    split: str,
    dataset: str = DATASET_NAME,
    min_side: int | None = None,
) -> tuple[Iterator[np.ndarray], np.ndarray]:
    """Decoded photos (``uint8``) of an ``images`` split, and their labels.
    ``min_side``: a JPEG decoded downscaled as whole-photo mode decodes a file
    (:func:`~logo_batch.inference.whole_photo.decode_side`); None: full size."""
    info = data_lib.load_split(data_dir, IMAGES, split, dataset=dataset)
    labels = data_lib.split_labels(info.records)
    images = info.records.map(lambda jpeg, _: decode_image_tf(jpeg, min_side))
    return images.as_numpy_iterator(), labels


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


def choose_cascade(
    photos: list[PhotoScores],
    labels: np.ndarray,
    negatives: list[PhotoScores],
    threshold: float,
    background_index: int | None,
) -> Cascade:
    """The cascade that changes no answer on the validation photos and negatives: a
    whole-photo window settles a photo only above every whole-window score at which
    settling would have changed a validation answer.

    ``accept``: above the top brand score of every whole-photo window whose brand or
    acceptance differs from the full grid's (at least ``threshold``); ``reject``: above
    the background score of every whole-photo window of a validation photo the full grid
    answers right (no such photo is ever settled as it stands)."""
    every = [*photos, *negatives]
    whole = np.stack([p.whole for p in every])
    if background_index is None:
        brands, background = whole, np.zeros(len(every))
    else:
        brands, background = np.delete(whole, background_index, axis=1), whole[:, background_index]
    grid = _brand_scores(every)
    same = (brands.argmax(1) == grid.argmax(1)) & (
        (brands.max(1) >= threshold) == (grid.max(1) >= threshold)
    )
    differing = brands.max(1)[~same]
    accept = max(threshold, float(differing.max()) if differing.size else threshold)
    right = (grid[: len(photos)].argmax(1) == labels) & (grid[: len(photos)].max(1) >= threshold)
    reject = float(background[: len(photos)][right].max()) if right.any() else 1.0
    step = 1e-6  # strictly above: a score equal to a limit still runs the grid
    return Cascade(accept=min(accept + step, 1.0 + step), reject=min(reject + step, 1.0 + step))


def calibrate(
    photo_model: PhotoModel,
    data_dir: str | os.PathLike,
    split: str = "validation",
    dataset: str = DATASET_NAME,
) -> tuple[float, dict[str, Any]]:
    """The threshold chosen on a validation split (its photos and negatives from them)
    and the metrics there: ``none_rejected`` is the rate on the negatives; ``cascade``
    the whole-photo cascade chosen there (:func:`choose_cascade`) and the share of those
    photos and negatives it settles with their whole-photo window."""
    images, labels = split_photos(data_dir, split, dataset, photo_model.decode_side)
    full = dataclasses.replace(photo_model, cascade=None)
    photos = full.results(images)
    negatives = full.results(negative_crops(data_dir, split, dataset))
    scores, negative_scores = _brand_scores(photos), _brand_scores(negatives)
    threshold = choose_photo_threshold(scores, labels, negative_scores)
    num_brands = len(photo_model.brands)
    all_scores = np.concatenate([scores, negative_scores]) if negative_scores.size else scores
    all_labels = np.concatenate([labels, np.full(len(negatives), num_brands)])
    metrics = compute_metrics(all_scores, all_labels, threshold)
    metrics["num_negative_windows"] = int(len(negatives))
    if photo_model.background_class is not None and photos:
        index = list(photo_model.class_names).index(photo_model.background_class)
        cascade = choose_cascade(photos, labels, negatives, threshold, index)
        settled = [cascade.decided(p.whole, index) for p in [*photos, *negatives]]
        metrics["cascade"] = {
            **dataclasses.asdict(cascade),
            "settled_photos": float(np.mean(settled[: len(photos)])),
            "settled_negatives": float(np.mean(settled[len(photos) :])) if negatives else 0.0,
        }
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
    images, labels = split_photos(data_dir, split, dataset, photo_model.decode_side)
    results = photo_model.results(images)
    scores = _brand_scores(results)
    metrics = compute_metrics(scores, labels, threshold)
    if (labels < scores.shape[1]).any() and (labels >= scores.shape[1]).any():
        metrics.update(flickrlogos_metrics(scores, labels, threshold))
    metrics["mode"] = "whole"
    metrics["cascade"] = (
        None
        if photo_model.cascade is None
        else {
            **dataclasses.asdict(photo_model.cascade),
            "windows_per_photo": float(np.mean([r.windows_scored for r in results]))
            if results
            else 0.0,
        }
    )
    return metrics, scores, labels
