"""The builder's policy on what a scan of the archive found.

Images that do not decode and boxes outside their image are skipped by name (boxes by
``file:line``), boxes overhanging their image are clipped, and all of it is counted in
the dataset's metadata; more than a small fraction skipped fails the build, since it
means a damaged archive rather than a few bad photos.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from collections.abc import Callable, Iterable, Mapping

from tfds_flickr27 import annotations as ann
from tfds_flickr27.archive import TRAINING_FILE, ArchiveError, ArchiveIndex

log = logging.getLogger(__name__)


# Default bound on what :func:`check` skips: at most 1% of the annotated images, and at
# most 1% of the distinct boxes; more means a damaged archive, not a few bad photos.
MAX_SKIPPED_FRACTION = 0.01


@dataclasses.dataclass
class CheckReport:
    """What :func:`check` left out or changed, keyed by member or ``file:line``."""

    skipped_images: dict[str, str]  # member of the images tar.gz -> reason
    rejected_boxes: dict[str, str]  # "<annotation file>:<line>" -> box and reason
    clipped_boxes: dict[str, str]  # "<annotation file>:<line>" -> box before and after
    zero_area_boxes: dict[str, str]  # "<annotation file>:<line>" -> box

    def as_metadata(self) -> dict:
        """JSON-ready summary for the dataset's ``info.metadata``."""
        return counted(self)


def counted(report) -> dict:
    """A report (a dataclass of collections) as JSON-ready metadata: each field, and
    ``num_<field>``, how many entries it has."""
    result: dict = {}
    for key, value in dataclasses.asdict(report).items():
        result[f"num_{key}"] = len(value)
        result[key] = value
    return result


def box_text(box: ann.Box) -> str:
    """A box as the reports show it: ``file class x1 y1 x2 y2``."""
    return f"{box.filename} {box.label} {box.x1} {box.y1} {box.x2} {box.y2}"


@dataclasses.dataclass
class FittedBoxes:
    """Boxes checked against their image's size (:func:`fit_boxes`)."""

    kept: dict[ann.Box, ann.Box]  # each kept box as annotated -> the box inside its image
    rejected: dict[str, str]  # where(box) -> box and reason: no pixel inside the image
    clipped: dict[str, str]  # where(box) -> box before and after clipping


def fit_boxes(
    boxes: Iterable[ann.Box],
    size: Mapping[str, tuple[int, int]],
    where: Callable[[ann.Box], str],
) -> FittedBoxes:
    """Each box against the ``(width, height)`` of its image: a box overhanging the image
    is clipped to it, a box with no pixel inside it is rejected; ``where(box)`` names the
    annotation line in the reports."""
    result = FittedBoxes({}, {}, {})
    for box in boxes:
        width, height = size[box.filename]
        if box.x1 >= width or box.y1 >= height:
            result.rejected[where(box)] = (
                f"{box_text(box)}: no pixel inside the {width}x{height} image"
            )
            continue
        fitted = dataclasses.replace(box, x2=min(box.x2, width), y2=min(box.y2, height))
        if fitted != box:
            result.clipped[where(box)] = (
                f"{box_text(box)} clipped to the {width}x{height} image: {box_text(fitted)}"
            )
        result.kept[box] = fitted
    return result


def check(
    index: ArchiveIndex,
    archive: str | os.PathLike,
    max_skipped_fraction: float = MAX_SKIPPED_FRACTION,
) -> tuple[ArchiveIndex, CheckReport]:
    """The index the splits are made from, and what was left out of it.

    * Annotated images that do not decode are left out (training and query), with all
      their boxes.
    * Boxes are checked against their image: a box overhanging the image is clipped to
      it; a box with no pixel inside the image is rejected (``file:line`` logged).
    * Raises :class:`ArchiveError` (naming every image or line) when more than
      ``max_skipped_fraction`` of the annotated images, or of the boxes, are left out.
    """
    archive = os.fspath(archive)
    training = index.training
    annotated = set(training.labels) | set(index.query)
    bad = sorted(annotated & set(index.unusable))
    if len(bad) > max_skipped_fraction * len(annotated):
        raise ArchiveError(
            f"{archive}: {len(bad)} of {len(annotated)} annotated images do not decode, "
            f"more than {max_skipped_fraction:.1%}; is the archive damaged?\n"
            + "\n".join(str(index.unusable[name]) for name in bad)
        )
    skipped = {index.unusable[name].member: index.unusable[name].reason for name in bad}
    for name in bad:
        log.warning("flickr_logos27: skipped, does not decode: %s", index.unusable[name])

    def where(box: ann.Box) -> str:
        return f"{TRAINING_FILE}:{training.line.get(box, '?')}"

    boxes = [b for b in training.boxes if b.filename not in index.unusable]
    fitted = fit_boxes(boxes, index.size, where)
    rejected, clipped = fitted.rejected, fitted.clipped
    kept: dict[ann.Box, int] = {}
    for box, inside in fitted.kept.items():
        kept.setdefault(inside, training.line.get(box, 0))
    if len(rejected) > max_skipped_fraction * max(len(boxes), 1):
        raise ArchiveError(
            f"{archive}: {len(rejected)} of {len(boxes)} boxes lie outside their image, "
            f"more than {max_skipped_fraction:.1%}; wrong annotation file?\n"
            + "\n".join(f"{k}: {v}" for k, v in rejected.items())
        )
    for key, text in rejected.items():
        log.warning("flickr_logos27: %s: %s: rejected box: %s", archive, key, text)
    for key, text in clipped.items():
        log.warning("flickr_logos27: %s: %s: %s", archive, key, text)
    zero_area = {}
    for box in training.zero_area:
        zero_area[where(box)] = box_text(box)
        log.warning("flickr_logos27: %s: %s: dropped zero-area box %s", archive, where(box), box)

    cleaned = ann.TrainingAnnotations(
        boxes=list(kept),
        zero_area=[b for b in training.zero_area if b.filename not in index.unusable],
        labels={f: ls for f, ls in training.labels.items() if f not in index.unusable},
        rows=training.rows,
        line={**training.line, **kept},
    )
    result = dataclasses.replace(
        index,
        training=cleaned,
        query={f: lab for f, lab in index.query.items() if f not in index.unusable},
    )
    report = CheckReport(
        skipped_images=skipped,
        rejected_boxes=rejected,
        clipped_boxes=clipped,
        zero_area_boxes=zero_area,
    )
    return result, report
