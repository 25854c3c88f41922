"""Parsing of the two FlickrLogos-27 annotation files (pure Python, no TensorFlow).

Training file: ``filename class subset x1 y1 x2 y2`` with single spaces, a trailing space
and CRLF. The subset column is cumulative (subset k repeats every row of subsets < k), so
rows are deduplicated to distinct ``(filename, class, box)``. Query file:
``filename<TAB>class``, ``class`` being one of the 27 or ``none``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

CLASS_NAMES: tuple[str, ...] = (
    "Adidas", "Apple", "BMW", "Citroen", "Cocacola", "DHL", "Fedex", "Ferrari", "Ford",
    "Google", "HP", "Heineken", "Intel", "McDonalds", "Mini", "Nbc", "Nike", "Pepsi",
    "Porsche", "Puma", "RedBull", "Sprite", "Starbucks", "Texaco", "Unicef", "Vodafone",
    "Yahoo",
)  # fmt: skip
NONE_LABEL = "none"
# ClassLabel names of every config: the 27 logos (indices 0..26), then `none` (27).
LABEL_NAMES: tuple[str, ...] = (*CLASS_NAMES, NONE_LABEL)


class AnnotationError(ValueError):
    """A malformed annotation line; the message names the file, line number and content."""


@dataclasses.dataclass(frozen=True, order=True)
class Box:
    """One logo box of the training set, in pixels (x2, y2 exclusive as in the files)."""

    filename: str
    label: str
    x1: int
    y1: int
    x2: int
    y2: int

    @property
    def area(self) -> int:
        return (self.x2 - self.x1) * (self.y2 - self.y1)


@dataclasses.dataclass
class TrainingAnnotations:
    """Distinct boxes, the zero-area boxes dropped from them, and each image's labels."""

    boxes: list[Box]
    zero_area: list[Box]
    labels: dict[str, list[str]]  # filename -> its classes, in CLASS_NAMES order
    rows: int  # lines read, before deduplication
    # each distinct box (zero-area ones too) -> the line number it first appears on
    line: dict[Box, int] = dataclasses.field(default_factory=dict)


def _lines(text: str | bytes) -> Iterable[tuple[int, str]]:
    if isinstance(text, bytes):
        text = text.decode("utf-8")
    for number, line in enumerate(text.splitlines(), start=1):
        if line.strip():
            yield number, line.strip()


def _fail(source: str, number: int, line: str, problem: str) -> AnnotationError:
    return AnnotationError(f"{source}, line {number}: {problem}: {line!r}")


def box_problem(x1: int, y1: int, x2: int, y2: int) -> str | None:
    """Why ``(x1, y1, x2, y2)`` is not a box (``None`` if it is one; zero area allowed)."""
    if min(x1, y1) < 0 or x2 < x1 or y2 < y1:
        return "box is not x1 <= x2, y1 <= y2, all >= 0"
    return None


def parse_training(text: str | bytes, source: str = "training annotation") -> TrainingAnnotations:
    """Parses the training annotation file; raises :class:`AnnotationError` on a bad line."""
    seen: dict[Box, int] = {}
    rows = 0
    for number, line in _lines(text):
        rows += 1
        fields = line.split()
        if len(fields) != 7:
            raise _fail(source, number, line, f"expected 7 fields, found {len(fields)}")
        filename, label, subset, *coords = fields
        if label not in CLASS_NAMES:
            raise _fail(source, number, line, f"unknown class {label!r}")
        if not filename.lower().endswith(".jpg"):
            raise _fail(source, number, line, "file name is not a .jpg")
        try:
            int(subset)
            x1, y1, x2, y2 = (int(value) for value in coords)
        except ValueError:
            raise _fail(source, number, line, "subset and box must be integers") from None
        problem = box_problem(x1, y1, x2, y2)
        if problem:
            raise _fail(source, number, line, problem)
        seen.setdefault(Box(filename, label, x1, y1, x2, y2), number)
    if not seen:
        raise AnnotationError(f"{source}: no annotation rows")
    labels: dict[str, set[str]] = {}
    for box in seen:
        labels.setdefault(box.filename, set()).add(box.label)
    return TrainingAnnotations(
        boxes=[box for box in seen if box.area > 0],
        zero_area=[box for box in seen if box.area == 0],
        labels={f: sorted(ls, key=CLASS_NAMES.index) for f, ls in labels.items()},
        rows=rows,
        line=seen,
    )


def parse_query(text: str | bytes, source: str = "query annotation") -> dict[str, str]:
    """Parses the query file to ``{filename: class or 'none'}``."""
    queries: dict[str, str] = {}
    for number, line in _lines(text):
        fields = line.split("\t")
        if len(fields) != 2:
            raise _fail(source, number, line, "expected 'filename<TAB>class'")
        filename, label = (field.strip() for field in fields)
        if label not in LABEL_NAMES:
            raise _fail(source, number, line, f"unknown class {label!r}")
        if filename in queries and queries[filename] != label:
            raise _fail(source, number, line, "file listed twice with different classes")
        queries[filename] = label
    if not queries:
        raise AnnotationError(f"{source}: no annotation rows")
    return queries


def primary_label(
    boxes: Iterable[Box], labels: list[str], order: Sequence[str] = CLASS_NAMES
) -> str:
    """The class with the largest single box (ties: first in ``order``, the class list).

    ``labels`` are all of the image's classes, so an image whose only box has zero area
    keeps its class.
    """
    area = dict.fromkeys(labels, 0)
    for box in boxes:
        area[box.label] = max(area.get(box.label, 0), box.area)
    return max(sorted(area, key=order.index), key=lambda label: area[label])
