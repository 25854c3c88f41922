"""Classifying image files with a bundle: the scores and the result rows.

``logo-batch predict`` and the Beam job both build their output rows here, from
model inputs made by :func:`logo_batch.preprocessing.preprocess_image_file`.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from logo_batch.bundle import Bundle
from logo_batch.preprocessing import DEFAULT_MAX_PIXELS, ImageDecodeError, preprocess_image_file

if TYPE_CHECKING:
    import keras

UNKNOWN_LABEL = "unknown"
CSV_COLUMNS = ("path", "label", "score", "top_labels", "top_scores", "error")
LIST_SEPARATOR = ";"


@dataclass
class Prediction:
    """The result for one file: top-k labels and scores, or an error."""

    path: str
    label: str = ""
    score: float | None = None
    top_labels: list[str] = field(default_factory=list)
    top_scores: list[float] = field(default_factory=list)
    error: str = ""

    def to_row(self) -> dict[str, str]:
        """The CSV row (see ``CSV_COLUMNS``); lists are ``;``-joined."""
        return {
            "path": self.path,
            "label": self.label,
            "score": "" if self.score is None else f"{self.score:.6f}",
            "top_labels": LIST_SEPARATOR.join(self.top_labels),
            "top_scores": LIST_SEPARATOR.join(f"{s:.6f}" for s in self.top_scores),
            "error": self.error,
        }


def scores_to_prediction(
    path: str,
    scores: np.ndarray,
    class_names: Sequence[str],
    *,
    top_k: int = 5,
    min_score: float | None = None,
) -> Prediction:
    """Turns one softmax vector into a :class:`Prediction` (``unknown`` below min_score)."""
    scores = np.asarray(scores, dtype=np.float64)
    order = np.argsort(-scores, kind="stable")[: max(1, top_k)]
    best = float(scores[order[0]])
    label = class_names[order[0]]
    if min_score is not None and best < min_score:
        label = UNKNOWN_LABEL
    return Prediction(
        path=path,
        label=label,
        score=best,
        top_labels=[class_names[i] for i in order],
        top_scores=[float(scores[i]) for i in order],
    )


def error_prediction(path: str, error: str) -> Prediction:
    """The row of a file that could not be classified."""
    return Prediction(path=path, error=error)


def predict_scores(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Softmax scores of a batch of model inputs ``float32 [B, S, S, 3]`` (one model
    call: what ``logo-batch predict`` and the Beam job's model handler both run)."""
    return np.asarray(model(images, training=False), dtype=np.float32)


def predict_files(
    bundle: Bundle,
    paths: Iterable[str | os.PathLike],
    *,
    top_k: int = 5,
    min_score: float | None = None,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> list[Prediction]:
    """Classifies files in batches; files that fail to decode get an error row."""
    results: list[Prediction] = []
    batch_paths: list[str] = []
    batch_inputs: list[np.ndarray] = []

    def flush() -> None:
        if not batch_inputs:
            return
        scores = predict_scores(bundle.model, np.stack(batch_inputs))
        for path, row in zip(batch_paths, scores, strict=True):
            results.append(
                scores_to_prediction(
                    path, row, bundle.class_names, top_k=top_k, min_score=min_score
                )
            )
        batch_paths.clear()
        batch_inputs.clear()

    for raw_path in paths:
        path = os.fspath(raw_path)
        try:
            batch_inputs.append(
                preprocess_image_file(path, bundle.image_size, max_pixels=max_pixels)
            )
        except ImageDecodeError as error:
            flush()
            results.append(error_prediction(path, error.reason))
            continue
        batch_paths.append(path)
        if len(batch_inputs) >= batch_size:
            flush()
    flush()
    return results
