"""Classifying image files with a bundle: the scores and the result rows.

``logo-batch predict`` and the Beam job both build their output rows here, in one of
two modes:

- ``single``: the whole file resized to one model input
  (:func:`logo_batch.inference.preprocessing.preprocess_image_file`), one softmax vector per file
  (:func:`scores_to_prediction`): for images that are already logo crops;
- ``whole``: the photo seen through a grid of windows (:mod:`logo_batch.inference.whole_photo`),
  a brand's score its best window's, with that window as ``box``
  (:func:`photo_to_prediction`): for ordinary photos where logos are small or absent.

``auto`` (:func:`resolve_mode`) is ``whole`` for a bundle with a background class,
``single`` otherwise.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from logo_batch.inference import whole_photo
from logo_batch.inference.bundle import Bundle
from logo_batch.inference.engines import predict_scores, with_precision
from logo_batch.inference.file_access import DEFAULT_MAX_BYTES, ImageDecodeError
from logo_batch.inference.preprocessing import DEFAULT_MAX_PIXELS, preprocess_image_file
from logo_batch.inference.whole_photo import Grid, PhotoScores, brand_names
from logo_batch.result_csv import LIST_SEPARATOR

if TYPE_CHECKING:
    from logo_batch.inference.bundle import BundleMetadata

UNKNOWN_LABEL = "unknown"
WHOLE, SINGLE, AUTO = "whole", "single", "auto"
MODES = (AUTO, WHOLE, SINGLE)
BUNDLE_THRESHOLD = "bundle"  # --min-score bundle: the bundle's rejection threshold


def background_class_of(metadata: BundleMetadata) -> str | None:
    """The bundle's background class (``None`` for a bundle that only knows brands)."""
    return getattr(metadata, "background_class", None)


def resolve_mode(mode: str, metadata: BundleMetadata, *, crops: bool = False) -> str:
    """``whole`` or ``single``: ``auto`` is ``whole`` for a bundle with a background
    class, unless the images are logo crops (``crops``: e.g. ``evaluate --config
    crops``), and ``single`` otherwise. The one rule of ``predict``, ``evaluate`` and
    the Beam job."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, not {mode!r}")
    if mode == AUTO:
        return WHOLE if background_class_of(metadata) and not crops else SINGLE
    return mode


def effective_min_score(
    min_score: float | str | None, mode: str, metadata: BundleMetadata
) -> float | None:
    """The threshold a run uses: ``min_score`` when given (:data:`BUNDLE_THRESHOLD`:
    the bundle's rejection threshold); otherwise the bundle's rejection threshold in
    whole-photo mode, none in single mode."""
    if min_score == BUNDLE_THRESHOLD:
        return metadata.rejection_threshold
    if min_score is not None:
        return float(min_score)
    return metadata.rejection_threshold if mode == WHOLE else None


@dataclass
class Prediction:
    """The result for one file: top-k labels and scores, or an error."""

    path: str
    label: str = ""
    score: float | None = None
    top_labels: list[str] = field(default_factory=list)
    top_scores: list[float] = field(default_factory=list)
    error: str = ""
    # Whole-photo mode: the window (x0, y0, x1, y1) where the top brand scored best.
    box: tuple[int, int, int, int] | None = None
    mode: str = ""

    def to_row(self) -> dict[str, str]:
        """The CSV row (:data:`~logo_batch.result_csv.CSV_COLUMNS`); lists are
        ``;``-joined, ``box`` is ``x0 y0 x1 y1``."""
        return {
            "path": self.path,
            "label": self.label,
            "score": "" if self.score is None else f"{self.score:.6f}",
            "top_labels": LIST_SEPARATOR.join(self.top_labels),
            "top_scores": LIST_SEPARATOR.join(f"{s:.6f}" for s in self.top_scores),
            "error": self.error,
            "box": "" if self.box is None else " ".join(str(int(v)) for v in self.box),
            "mode": self.mode,
        }


def scores_to_prediction(
    path: str,
    scores: np.ndarray,
    class_names: Sequence[str],
    *,
    top_k: int = 5,
    min_score: float | None = None,
) -> Prediction:
    """Turns one softmax vector into a :class:`Prediction` (``unknown`` below min_score);
    single-view mode."""
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
        mode=SINGLE,
    )


def photo_to_prediction(
    path: str,
    photo: PhotoScores,
    class_names: Sequence[str],
    background_class: str | None,
    *,
    top_k: int = 5,
    min_score: float | None = None,
) -> Prediction:
    """Turns a whole-photo result into a :class:`Prediction`: top-k over the brands,
    ``box`` the top brand's best window; below ``min_score`` the label is the
    background class (``none``), or ``unknown`` for a bundle without one."""
    names = brand_names(class_names, background_class)
    row = scores_to_prediction(path, photo.brand_scores, names, top_k=top_k, min_score=None)
    rejected = min_score is not None and row.score < min_score
    return dataclasses.replace(
        row,
        label=(background_class or UNKNOWN_LABEL) if rejected else row.label,
        box=tuple(int(v) for v in photo.boxes[names.index(row.top_labels[0])]),
        mode=WHOLE,
    )


def error_prediction(path: str, error: str, mode: str = "") -> Prediction:
    """The row of a file that could not be classified."""
    return Prediction(path=path, error=error, mode=mode)


def predict_files(
    bundle: Bundle,
    paths: Iterable[str | os.PathLike],
    *,
    top_k: int = 5,
    min_score: float | None = None,
    batch_size: int = 32,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    mode: str = AUTO,
    grid: Grid | None = None,
    precision: str | None = None,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[Prediction]:
    """Classifies files in batches, in input order; files that fail to decode get an
    error row (a file over ``max_bytes`` or an image over ``max_pixels`` is refused
    before it is read or decoded).

    ``mode``: ``single`` (one input per file, ``batch_size`` files per model call),
    ``whole`` (the windows of consecutive files stacked, ``batch_size`` windows per
    model call, ``grid`` the windows, default
    :data:`~logo_batch.inference.whole_photo.DEFAULT_GRID`) or ``auto``
    (:func:`resolve_mode`). ``min_score`` is used as given (see
    :func:`effective_min_score` for the commands' default). ``precision``: run the
    engine it resolves to (:func:`~logo_batch.inference.engines.with_precision`); None
    (default): ``bundle.model`` as it is (a loaded bundle's Keras model, or the engine
    :func:`~logo_batch.inference.engines.open_for_inference` put there).
    """
    mode = resolve_mode(mode, bundle.metadata)
    if precision is not None:
        bundle, _ = with_precision(bundle, precision)
    if mode == WHOLE:
        return _predict_files_whole(
            bundle,
            [os.fspath(p) for p in paths],
            top_k=top_k,
            min_score=min_score,
            batch_size=batch_size,
            max_pixels=max_pixels,
            max_bytes=max_bytes,
            grid=grid,
        )
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
                preprocess_image_file(
                    path, bundle.image_size, max_pixels=max_pixels, max_bytes=max_bytes
                )
            )
        except ImageDecodeError as error:
            flush()
            results.append(error_prediction(path, error.reason, SINGLE))
            continue
        batch_paths.append(path)
        if len(batch_inputs) >= batch_size:
            flush()
    flush()
    return results


def _predict_files_whole(
    bundle: Bundle,
    paths: list[str],
    *,
    top_k: int,
    min_score: float | None,
    batch_size: int,
    max_pixels: int,
    max_bytes: int,
    grid: Grid | None,
) -> list[Prediction]:
    """Whole-photo mode of :func:`predict_files`: each file decoded once, its window
    stack made, the stacks of consecutive files streamed through
    :func:`~logo_batch.inference.whole_photo.score_window_stacks`."""
    grid = whole_photo.DEFAULT_GRID if grid is None else grid
    background = background_class_of(bundle.metadata)
    results: list[Prediction | None] = [None] * len(paths)
    decoded: list[int] = []  # indexes of the files whose stacks went to the model

    def stacks():
        for index, path in enumerate(paths):
            try:
                stack = whole_photo.load_photo_stack(
                    path, bundle.image_size, grid, max_pixels=max_pixels, max_bytes=max_bytes
                )
            except ImageDecodeError as error:
                results[index] = error_prediction(path, error.reason, WHOLE)
                continue
            decoded.append(index)
            yield stack

    scored = whole_photo.score_window_stacks(
        bundle.model,
        stacks(),
        bundle.class_names,
        background,
        batch_size=batch_size,
        cascade=whole_photo.Cascade.of(bundle.metadata),
    )
    for position, photo in enumerate(scored):
        index = decoded[position]
        results[index] = photo_to_prediction(
            paths[index], photo, bundle.class_names, background, top_k=top_k, min_score=min_score
        )
    return [r for r in results if r is not None]
