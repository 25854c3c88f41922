"""Whole-photo inference: classify a photo through a grid of windows, not one resize.

In an ordinary photo a logo is small, and most photos hold none. Resizing the whole
photo to the model's input shrinks a small logo to a few pixels. Here each photo is
seen through windows of several sizes (:data:`DEFAULT_GRID`: the whole photo, 2 x 2
windows covering 60% of each side, 3 x 3 covering 40%: 14 windows), each window is
resized exactly as training resizes an image
(:func:`logo_batch.inference.preprocessing.resize_image`) and classified, and a
photo's score for a brand is the highest that brand reaches in any window
(:func:`aggregate`), with the window where it did as evidence.

:func:`classify_photos` (images in memory) and the Beam job (window stacks made by its
decode step) both go through :func:`score_window_stacks`: the windows of many photos
are run through the model together, in calls of at most ``batch_size`` windows, and
split back per photo.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from logo_batch.inference.engines import predict_scores
from logo_batch.inference.preprocessing import resize_image

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


def window_inputs(image: np.ndarray, windows: np.ndarray, image_size: int) -> np.ndarray:
    """Model inputs ``float32 [W, S, S, 3]`` of ``image`` (``uint8 [H, W, 3]``), one per
    window, each cropped and resized by :func:`~logo_batch.inference.preprocessing.resize_image`
    (so the whole-photo window is exactly the single-view input)."""
    out = np.empty((len(windows), image_size, image_size, 3), dtype=np.float32)
    for index, (x0, y0, x1, y1) in enumerate(np.asarray(windows)):
        out[index] = resize_image(image[y0:y1, x0:x1], image_size).numpy()
    return out


@dataclass(frozen=True)
class WindowStack:
    """One photo ready for the model: its window inputs and their boxes."""

    inputs: np.ndarray  # float32 [W, S, S, 3]
    windows: np.ndarray  # int32 [W, 4]

    def __post_init__(self):
        if len(self.inputs) != len(self.windows) or len(self.windows) == 0:
            raise ValueError(
                f"a window stack needs one input per window and at least one window, "
                f"not {len(self.inputs)} inputs for {len(self.windows)} windows"
            )

    def __sizeof__(self) -> int:  # what Beam's model handlers count as an example's bytes
        return object.__sizeof__(self) + self.inputs.nbytes + self.windows.nbytes


def photo_stack(image: np.ndarray, image_size: int, grid: Grid = DEFAULT_GRID) -> WindowStack:
    """A decoded photo (``uint8 [H, W, 3]``) as its :class:`WindowStack`."""
    windows = photo_windows(image.shape[0], image.shape[1], grid)
    return WindowStack(window_inputs(image, windows, image_size), windows)


@dataclass
class PhotoScores:
    """A photo's result: per brand (the class names without the background class, in
    order) the highest probability over the windows and the window where it was
    reached; and the background probability of the whole-photo window (0.0 for a
    model without a background class)."""

    brand_scores: np.ndarray  # float32 [K]
    boxes: np.ndarray  # int32 [K, 4]
    background: float


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
    )


def score_window_stacks(
    model: keras.Model,
    stacks: Iterable[WindowStack],
    class_names: Sequence[str],
    background_class: str | None,
    *,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> Iterator[PhotoScores]:
    """:class:`PhotoScores` of each stack, in order: the windows of consecutive photos
    run through the model together (:func:`logo_batch.inference.engines.predict_scores`) in calls
    of at most ``batch_size`` windows, then split back per photo.

    ``stacks`` is read lazily: at most ``batch_size`` windows plus one photo's are held
    besides the stack being read, so any number of photos can stream through.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, not {batch_size}")
    _background_index(class_names, background_class)  # fail before any model call
    pending: list[WindowStack] = []  # photos not yet yielded, in order
    rows: list[np.ndarray] = []  # scores of the first windows of `pending`, in order

    def unscored() -> int:
        return sum(len(s.windows) for s in pending) - sum(len(r) for r in rows)

    def run(count: int) -> None:
        """Scores the next ``count`` windows in one model call."""
        start, position, parts = sum(len(r) for r in rows), 0, []
        for stack in pending:
            lo, hi = max(start - position, 0), min(start + count - position, len(stack.windows))
            if lo < hi:
                parts.append(stack.inputs[lo:hi])
            position += len(stack.windows)
            if position >= start + count:
                break
        inputs = parts[0] if len(parts) == 1 else np.concatenate(parts)
        rows.append(predict_scores(model, inputs))

    def finished() -> Iterator[PhotoScores]:
        """Yields the photos at the front whose windows are all scored."""
        if not rows:
            return
        done = rows[0] if len(rows) == 1 else np.concatenate(rows)
        used = 0
        while pending and len(done) - used >= len(pending[0].windows):
            stack = pending.pop(0)
            n = len(stack.windows)
            yield aggregate(done[used : used + n], stack.windows, class_names, background_class)
            used += n
        rows[:] = [done[used:]] if used < len(done) else []

    for stack in stacks:
        pending.append(stack)
        while unscored() >= batch_size:
            run(batch_size)
        yield from finished()
    while unscored():
        run(min(unscored(), batch_size))
    yield from finished()


def classify_photos(
    model: keras.Model,
    images: Iterable[np.ndarray],
    image_size: int,
    class_names: Sequence[str],
    background_class: str | None,
    grid: Grid = DEFAULT_GRID,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[PhotoScores]:
    """Whole-photo results of decoded photos (``uint8 [H, W, 3]`` each): the windows
    of many photos stacked and run through the model in calls of at most
    ``batch_size`` windows (:func:`score_window_stacks`)."""
    stacks = (photo_stack(image, image_size, grid) for image in images)
    return list(
        score_window_stacks(model, stacks, class_names, background_class, batch_size=batch_size)
    )
