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
        result: dict = {}
        for key, value in dataclasses.asdict(self).items():
            result[f"num_{key}"] = len(value)
            result[key] = value
        return result


def _box_text(box: ann.Box) -> str:
    return f"{box.filename} {box.label} {box.x1} {box.y1} {box.x2} {box.y2}"


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

    kept: dict[ann.Box, int] = {}
    rejected: dict[str, str] = {}
    clipped: dict[str, str] = {}
    for box in training.boxes:
        if box.filename in index.unusable:
            continue
        width, height = index.size[box.filename]
        if box.x1 >= width or box.y1 >= height:
            rejected[where(box)] = f"{_box_text(box)}: no pixel inside the {width}x{height} image"
            continue
        fitted = dataclasses.replace(box, x2=min(box.x2, width), y2=min(box.y2, height))
        if fitted != box:
            clipped[where(box)] = (
                f"{_box_text(box)} clipped to the {width}x{height} image: {_box_text(fitted)}"
            )
        kept.setdefault(fitted, training.line.get(box, 0))
    boxes = [b for b in training.boxes if b.filename not in index.unusable]
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
        zero_area[where(box)] = _box_text(box)
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
