"""Whole-photo inference: classify a photo through a grid of windows, not one resize.

In an ordinary photo a logo is small, and most photos hold none. Resizing the whole
photo to the model's input shrinks a small logo to a few pixels. Here each photo is
seen through windows of several sizes (:data:`DEFAULT_GRID`: the whole photo, 2 x 2
windows covering 60% of each side, 3 x 3 covering 40%: 14 windows), each window is
resized exactly as training resizes an image
(:func:`logo_batch.inference.preprocessing.resize_bands`) and classified, and a
photo's score for a brand is the highest that brand reaches in any window
(:func:`aggregate`), with the window where it did as evidence.

:func:`classify_photos` (images in memory) and the Beam job (window stacks made by its
decode step) both go through :func:`score_window_stacks`: the windows of many photos
are run through the model together, in calls of at most ``batch_size`` windows, and
split back per photo.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from logo_batch.inference.engines import predict_scores
from logo_batch.inference.file_access import ImageSource
from logo_batch.inference.preprocessing import float_bands, load_photo, resize_bands

if TYPE_CHECKING:
    import keras

# (n, f): n x n windows, each covering the fraction f of each side of the photo.
Grid = Sequence[tuple[int, float]]
DEFAULT_GRID: tuple[tuple[int, float], ...] = ((1, 1.0), (2, 0.6), (3, 0.4))
DEFAULT_BATCH_SIZE = 64


def _check_grid(grid: Grid) -> None:
    if not grid:
        raise ValueError("the window grid is empty")
    for n, fraction in grid:
        if int(n) != n or n < 1 or not 0.0 < fraction <= 1.0:
            raise ValueError(
                f"grid entry {(n, fraction)!r}: n must be a positive integer and the "
                f"fraction in (0, 1]"
            )


def _starts(length: int, size: int, n: int) -> list[int]:
    """``n`` window starts along a side of ``length``, evenly spaced edge to edge (one
    window alone is centred)."""
    if n == 1:
        return [(length - size) // 2]
    return [int(np.floor(i * (length - size) / (n - 1) + 0.5)) for i in range(n)]


def photo_windows(height: int, width: int, grid: Grid = DEFAULT_GRID) -> np.ndarray:
    """The windows of a ``height`` x ``width`` photo: ``int32 [W, 4]`` boxes
    ``(x0, y0, x1, y1)`` in pixels (``x1``, ``y1`` exclusive), each at least 1 pixel.

    For each ``(n, f)`` of ``grid``, in order: ``n`` x ``n`` windows of
    ``round(f * width)`` x ``round(f * height)`` pixels, the first and last touching
    the photo's edges, row by row. ``(1, 1.0)`` is the whole photo.
    """
    if height < 1 or width < 1:
        raise ValueError(f"a photo of {width}x{height} pixels has no windows")
    _check_grid(grid)
    boxes = []
    for n, fraction in grid:
        win_w = min(width, max(1, int(np.floor(fraction * width + 0.5))))
        win_h = min(height, max(1, int(np.floor(fraction * height + 0.5))))
        for y0 in _starts(height, win_h, int(n)):
            for x0 in _starts(width, win_w, int(n)):
                boxes.append((x0, y0, x0 + win_w, y0 + win_h))
    return np.asarray(boxes, dtype=np.int32).reshape(-1, 4)


def window_inputs(
    image: np.ndarray, windows: np.ndarray, image_size: int, out: np.ndarray | None = None
) -> np.ndarray:
    """Model inputs ``float32 [W, S, S, 3]`` of ``image`` (``uint8 [H, W, 3]``), one per
    window, each cropped and resized as :func:`~logo_batch.inference.preprocessing.resize_array`
    resizes (so the whole-photo window is exactly the single-view input); the photo is
    made float once (:func:`~logo_batch.inference.preprocessing.float_bands`), not once a
    window. Written into ``out`` (``[W, S, S, 3]``) when given."""
    if out is None:
        out = np.empty((len(windows), image_size, image_size, 3), dtype=np.float32)
    if len(windows):
        bands = float_bands(image)
        for index, box in enumerate(np.asarray(windows)):
            resize_bands(bands, image_size, box=tuple(box), out=out[index])
    return out


@dataclass(frozen=True, eq=False)
class WindowStack:
    """One photo ready for the model: the decoded photo and its windows; a window's
    input is made only when the window is scored (:meth:`window_inputs`).
    ``original_size``: the photo's own ``(height, width)`` where it was decoded
    downscaled (:func:`load_photo_stack`); :attr:`boxes` are the windows in its pixels."""

    image: np.ndarray  # uint8 [H, W, 3]
    windows: np.ndarray  # int32 [W, 4] in the image's pixels; the first the whole photo
    image_size: int
    original_size: tuple[int, int] | None = None

    def __post_init__(self):
        if len(self.windows) == 0:
            raise ValueError("a window stack needs at least one window")

    @property
    def boxes(self) -> np.ndarray:
        """The windows ``int32 [W, 4]`` in the photo's own pixels (the file's)."""
        height, width = self.image.shape[:2]
        if self.original_size is None or self.original_size == (height, width):
            return self.windows
        scale = np.array([self.original_size[1] / width, self.original_size[0] / height] * 2)
        limit = np.array([self.original_size[1], self.original_size[0]] * 2)
        return np.minimum(np.rint(self.windows * scale), limit).astype(np.int32)

    def window_inputs(self, indices: Sequence[int], out: np.ndarray | None = None) -> np.ndarray:
        """Model inputs ``float32 [len(indices), S, S, 3]`` of those windows (into ``out``)."""
        return window_inputs(self.image, self.windows[list(indices)], self.image_size, out)

    @property
    def inputs(self) -> np.ndarray:
        """Every window's model input ``float32 [W, S, S, 3]``."""
        return self.window_inputs(range(len(self.windows)))

    def __sizeof__(self) -> int:  # what Beam's model handlers count as an example's bytes
        return object.__sizeof__(self) + self.image.nbytes + self.windows.nbytes


def photo_stack(
    image: np.ndarray,
    image_size: int,
    grid: Grid = DEFAULT_GRID,
    original_size: tuple[int, int] | None = None,
) -> WindowStack:
    """A decoded photo (``uint8 [H, W, 3]``) as its :class:`WindowStack`."""
    windows = photo_windows(image.shape[0], image.shape[1], grid)
    return WindowStack(image, windows, image_size, original_size)


def decode_side(image_size: int, grid: Grid = DEFAULT_GRID) -> int:
    """The shortest side a photo is decoded at, at least, for whole-photo mode: its
    smallest window (``f`` of each side) still has ``image_size`` pixels a side."""
    _check_grid(grid)
    return math.ceil(image_size / min(fraction for _, fraction in grid))


def load_photo_stack(
    source: ImageSource, image_size: int, grid: Grid = DEFAULT_GRID, **limits
) -> WindowStack:
    """An image file as its :class:`WindowStack`: a JPEG larger than the grid needs
    (:func:`decode_side`) decoded downscaled in the DCT domain, the windows' boxes in
    the file's pixels. ``limits``: :func:`load_photo`'s ``name``, ``max_pixels``,
    ``max_bytes``; raises its :class:`ImageDecodeError`."""
    image, size = load_photo(source, min_side=decode_side(image_size, grid), **limits)
    return photo_stack(image, image_size, grid, size)


@dataclass(frozen=True)
class Cascade:
    """Whole-photo mode as a cascade: the whole-photo window first, the rest of the grid
    only where it is not confident. A photo whose whole-photo window gives a brand at
    least ``accept``, or the background class at least ``reject``, keeps that window's
    answer; the others are scored over every window. Chosen on validation photos
    (:func:`logo_batch.evaluation.photo_metrics.choose_cascade`) and kept in the bundle's
    metadata (``whole_photo``)."""

    accept: float
    reject: float

    def decided(self, scores: np.ndarray, background_index: int | None) -> bool:
        """Whether the whole-photo window's softmax ``scores`` ``[C]`` settle the photo."""
        if background_index is None:
            return bool(scores.max() >= self.accept)
        brands = np.delete(scores, background_index)
        return bool(brands.max() >= self.accept or scores[background_index] >= self.reject)

    @classmethod
    def of(cls, metadata) -> Cascade | None:
        """The cascade a bundle's metadata holds (``whole_photo.cascade``), else None."""
        found = (getattr(metadata, "whole_photo", None) or {}).get("cascade")
        return None if not found else cls(float(found["accept"]), float(found["reject"]))


@dataclass
class PhotoScores:
    """A photo's result: per brand (the class names without the background class, in
    order) the highest probability over the windows and the window where it was
    reached; and the background probability of the whole-photo window (0.0 for a
    model without a background class)."""

    brand_scores: np.ndarray  # float32 [K]
    boxes: np.ndarray  # int32 [K, 4]
    background: float
    whole: np.ndarray | None = None  # float32 [C]: the whole-photo window's softmax
    windows_scored: int = 0  # model inputs this photo took (fewer than its windows: cascade)


def brand_names(class_names: Sequence[str], background_class: str | None) -> list[str]:
    """The class names without the background class."""
    return [name for name in class_names if background_class is None or name != background_class]


def _background_index(class_names: Sequence[str], background_class: str | None) -> int | None:
    if background_class is None:
        return None
    try:
        return list(class_names).index(background_class)
    except ValueError:
        raise ValueError(
            f"background class {background_class!r} is not one of the class names"
        ) from None


def aggregate(
    scores: np.ndarray,
    windows: np.ndarray,
    class_names: Sequence[str],
    background_class: str | None,
) -> PhotoScores:
    """One photo's window scores ``[W, C]`` to its :class:`PhotoScores`.

    Per brand the max over windows (the background column left out) and the box of the
    first window reaching it; the background probability is read from the whole-photo
    window (the largest; the first of equals).
    """
    scores = np.asarray(scores, dtype=np.float32)
    windows = np.asarray(windows, dtype=np.int32)
    if scores.ndim != 2 or scores.shape != (len(windows), len(class_names)):
        raise ValueError(
            f"scores of shape {scores.shape} do not match {len(windows)} windows and "
            f"{len(class_names)} classes"
        )
    background_index = _background_index(class_names, background_class)
    if background_index is None:
        brands, background = scores, 0.0
    else:
        brands = np.delete(scores, background_index, axis=1)
        areas = (windows[:, 2] - windows[:, 0]).astype(np.int64) * (windows[:, 3] - windows[:, 1])
        background = float(scores[int(np.argmax(areas)), background_index])
    best = np.argmax(brands, axis=0)
    return PhotoScores(
        brand_scores=brands[best, np.arange(brands.shape[1])],
        boxes=windows[best],
        background=background,
        whole=scores[0],
        windows_scored=len(windows),
    )


def _score_chunks(model, parts: list[tuple[WindowStack, list[int]]], batch_size: int):
    """Scores ``(stack, window indices)`` parts in calls of at most ``batch_size``
    windows (inputs made per call); returns ``[total, C]`` in order."""
    out, pending, count = [], [], 0

    def flush():
        nonlocal count
        if pending:
            size = pending[0][0].image_size
            inputs = np.empty((count, size, size, 3), dtype=np.float32)
            start = 0
            for stack, idx in pending:  # each window made where the call reads it
                stack.window_inputs(idx, out=inputs[start : start + len(idx)])
                start += len(idx)
            out.append(predict_scores(model, inputs))
            pending.clear()
            count = 0

    for stack, indices in parts:
        start = 0
        while start < len(indices):
            take = min(batch_size - count, len(indices) - start)
            pending.append((stack, indices[start : start + take]))
            count += take
            start += take
            if count == batch_size:
                flush()
    flush()
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def _score_group(model, group, class_names, background_class, batch_size, cascade):
    """The :class:`PhotoScores` of a group of stacks: all their windows packed into calls
    of ``batch_size``; with a ``cascade``, every whole-photo window first, then the other
    windows of the photos it does not settle."""
    background_index = _background_index(class_names, background_class)
    heads: list[list[np.ndarray]] = [[] for _ in group]  # a whole-photo window scored apart
    counts = [len(stack.windows) for stack in group]
    if cascade is not None:
        first = _score_chunks(model, [(stack, [0]) for stack in group], batch_size)
        heads = [[first[index : index + 1]] for index in range(len(group))]
        counts = [
            1 if cascade.decided(row, background_index) else n
            for row, n in zip(first, counts, strict=True)
        ]
    skip = 0 if cascade is None else 1
    rest = _score_chunks(
        model, [(s, list(range(skip, n))) for s, n in zip(group, counts, strict=True)], batch_size
    )
    used = 0
    for stack, head, n in zip(group, heads, counts, strict=True):
        scores = np.concatenate([*head, *([rest[used : used + n - skip]] if n > skip else [])])
        used += n - skip
        yield aggregate(scores, stack.boxes[:n], class_names, background_class)


def score_window_stacks(
    model: keras.Model,
    stacks: Iterable[WindowStack],
    class_names: Sequence[str],
    background_class: str | None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cascade: Cascade | None = None,
) -> Iterator[PhotoScores]:
    """:class:`PhotoScores` of each stack, in order. Photos go in groups of
    ``batch_size``, their windows run through the model together
    (:func:`logo_batch.inference.engines.predict_scores`) in calls of at most
    ``batch_size`` windows; with a ``cascade`` (:class:`Cascade`), the group's
    whole-photo windows first, then the other windows of the photos it does not settle.

    ``stacks`` is read lazily: one group of decoded photos is held at a time, and a
    window's input is made only for the call that scores it.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    _background_index(class_names, background_class)  # fail before any model call
    group: list[WindowStack] = []
    for stack in stacks:
        group.append(stack)
        if len(group) == batch_size:
            yield from _score_group(
                model, group, class_names, background_class, batch_size, cascade
            )
            group = []
    if group:
        yield from _score_group(model, group, class_names, background_class, batch_size, cascade)


def classify_photos(
    model: keras.Model,
    images: Iterable[np.ndarray],
    image_size: int,
    class_names: Sequence[str],
    background_class: str | None,
    grid: Grid = DEFAULT_GRID,
    batch_size: int = DEFAULT_BATCH_SIZE,
    cascade: Cascade | None = None,
) -> list[PhotoScores]:
    """Whole-photo results of decoded photos (``uint8 [H, W, 3]`` each): the windows
    of many photos stacked and run through the model in calls of at most
    ``batch_size`` windows (:func:`score_window_stacks`)."""
    stacks = (photo_stack(image, image_size, grid) for image in images)
    return list(
        score_window_stacks(
            model, stacks, class_names, background_class, batch_size=batch_size, cascade=cascade
        )
    )
