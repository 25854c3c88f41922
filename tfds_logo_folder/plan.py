"""From a scanned folder to what each split holds, and what was left out and why.

* Files that do not decode are skipped by name; rows of ``boxes.csv`` naming a photo
  that is not in ``photos/`` (or is skipped) are skipped by line; a photo no row names is
  skipped (photos without logos belong in ``none/``). Boxes are checked against their
  photo as FlickrLogos-27's are (:func:`tfds_flickr27.checks.fit_boxes`): clipped when
  they overhang it, rejected when no pixel is inside it, dropped when of zero area (the
  photo keeps the brand in its ``labels``).
* The brands: every brand with a kept box or crop, sorted as Python sorts strings
  (upper case before lower case, as FlickrLogos-27's list), then ``none``.
* Splits by image, never by box (FlickrLogos-27's :func:`tfds_flickr27.splits.assign`):
  byte-identical files (same sha256) form one group and land in one split; groups are
  stratified by kind (a photo, or crops only) and primary brand, so each config gets
  the fractions per brand. ``none/`` photos all go to the ``images`` test split: the
  rejection threshold is chosen on validation logo photos and no-logo windows cut from
  them, so the rejection rate is measured on photos that chose nothing. A ``none/``
  photo byte-identical to a logo file is skipped.
"""

from __future__ import annotations

import dataclasses
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path

from tfds_flickr27 import annotations as ann
from tfds_flickr27.checks import box_text, counted, fit_boxes
from tfds_flickr27.names import CROPS, IMAGES
from tfds_flickr27.splits import assign
from tfds_logo_folder.layout import PHOTOS_DIR, FolderError, Listing, brand_key
from tfds_logo_folder.scan import FileFacts

SPLITS = ("train", "validation", "test")
SALT = "logo_folder"  # orders the groups inside a brand: sha256(SALT + group hash)


@dataclasses.dataclass
class Report:
    """What the build left out or changed, by file or ``boxes.csv:<line>``."""

    skipped_files: dict[str, str] = dataclasses.field(default_factory=dict)
    skipped_rows: dict[str, str] = dataclasses.field(default_factory=dict)
    rejected_boxes: dict[str, str] = dataclasses.field(default_factory=dict)
    clipped_boxes: dict[str, str] = dataclasses.field(default_factory=dict)
    zero_area_boxes: dict[str, str] = dataclasses.field(default_factory=dict)
    spellings: dict[str, str] = dataclasses.field(default_factory=dict)  # where -> merge
    rotated: list[str] = dataclasses.field(default_factory=list)  # stored as shown (EXIF)
    # config -> brand -> the splits where it has no example
    missing: dict[str, dict[str, list[str]]] = dataclasses.field(default_factory=dict)

    def as_metadata(self) -> dict:
        """JSON-ready, for the dataset's ``info.metadata``."""
        return counted(self)


@dataclasses.dataclass
class FolderIndex:
    """Every kept file, its split and its labels: all the builder needs."""

    folder: Path
    brands: list[str]
    facts: dict[str, FileFacts]  # every file read, kept or not
    split: dict[str, str]  # kept file -> train, validation or test
    crop_brand: dict[str, str]  # crops/ file -> its brand
    labels: dict[str, list[str]]  # photos/ and none/ file -> its brands (none/: empty)
    boxes: dict[str, list[ann.Box]]  # photos/ file -> its kept boxes (in the photo as shown)
    report: Report

    @property
    def label_names(self) -> list[str]:
        return [*self.brands, ann.NONE_LABEL]

    def primary(self, photo: str) -> str:
        """A photo's ``label``: its brand with the largest box, ``none`` for none/."""
        labels = self.labels[photo]
        if not labels:
            return ann.NONE_LABEL
        return ann.primary_label(self.boxes.get(photo, []), labels, self.brands)

    def files(self, config: str, split: str) -> list[str]:
        """The files whose examples ``config``'s ``split`` holds, sorted."""
        kinds = self.labels if config == IMAGES else {**self.crop_brand, **self.boxes}
        return sorted(f for f in kinds if self.split[f] == split)

    def counts(self, config: str) -> dict[str, Counter]:
        """Examples per label and split: photos by primary label (``images``), crops and
        boxes by brand (``crops``)."""
        result: dict[str, Counter] = {split: Counter() for split in SPLITS}
        for split in SPLITS:
            for name in self.files(config, split):
                if config == IMAGES:
                    result[split][self.primary(name)] += 1
                elif name in self.crop_brand:
                    result[split][self.crop_brand[name]] += 1
                else:
                    result[split].update(box.label for box in self.boxes[name])
        return result


def _spell(listing: Listing, report: Report) -> dict[str, str]:
    """Brand key -> its spelling: the first seen (crops/ folders, then boxes.csv)."""
    spelled: dict[str, tuple[str, str]] = {}  # key -> (spelling, where first seen)
    seen: set[str] = set()
    named = list(listing.crops.items())
    named += [(row.where, row.brand) for row in listing.rows]
    for where, spelling in named:
        key = brand_key(spelling)
        first, first_where = spelled.setdefault(key, (spelling, where))
        if spelling != first and spelling not in seen:
            report.spellings[where] = f"{spelling!r} is brand {first!r} (as in {first_where})"
        seen.add(spelling)
    return {key: spelling for key, (spelling, _) in spelled.items()}


def _boxes(listing: Listing, facts: Mapping[str, FileFacts], spelled, report: Report):
    """The rows' boxes on usable photos, and each box's line."""
    photos = set(listing.photos)
    boxes: list[ann.Box] = []
    line: dict[ann.Box, str] = {}
    for row in listing.rows:
        if row.photo not in photos:
            report.skipped_rows[row.where] = (
                f"unknown file: {row.photo} is not in {PHOTOS_DIR}/ (filename is relative to it)"
            )
        elif facts[row.photo].size is None:
            report.skipped_rows[row.where] = f"its photo {row.photo} is skipped"
        else:
            box = ann.Box(row.photo, spelled[brand_key(row.brand)], *row.box)
            boxes.append(box)
            line[box] = row.where
    return boxes, line


def _check_boxes(index: FolderIndex, boxes, line, report: Report) -> list[str]:
    """Fills ``index.boxes`` and ``index.labels`` of photos; returns the brands."""
    for box in boxes:
        if box.area == 0:
            report.zero_area_boxes[line[box]] = box_text(box)
    size = {name: facts.size for name, facts in index.facts.items()}
    fitted = fit_boxes([b for b in boxes if b.area > 0], size, line.__getitem__)
    report.rejected_boxes.update(fitted.rejected)
    report.clipped_boxes.update(fitted.clipped)
    kept = dict.fromkeys(fitted.kept.values())  # two boxes clipped alike are one
    for box in kept:
        index.boxes.setdefault(box.filename, []).append(box)
    brands = sorted({*index.crop_brand.values(), *(box.label for box in kept)})
    named: dict[str, set[str]] = {}
    for box in boxes:
        named.setdefault(box.filename, set()).add(box.label)
    for photo, labels in named.items():
        known = [label for label in brands if label in labels]
        if known:
            index.labels[photo] = known
        else:
            lines = sorted({line[b] for b in boxes if b.filename == photo})
            report.skipped_files[photo] = f"no usable box ({', '.join(lines)})"
    for photo in index.boxes:
        index.boxes[photo].sort()
    return brands


def _assign_splits(index: FolderIndex, none: Sequence[str], fractions, report: Report) -> None:
    """Splits of the logo files by group, then ``none/`` photos to test."""
    groups: dict[str, list[str]] = {}
    for name in sorted({*index.crop_brand, *index.labels}):
        groups.setdefault(index.facts[name].sha256, []).append(name)
    keys = {}
    for digest, files in groups.items():
        photos = [f for f in files if f in index.labels]
        if photos:
            boxes = [b for f in photos for b in index.boxes.get(f, [])]
            labels = [lab for lab in index.brands if any(lab in index.labels[f] for f in photos)]
            keys[digest] = f"photos:{ann.primary_label(boxes, labels, index.brands)}"
        else:
            keys[digest] = f"crops:{min(index.crop_brand[f] for f in files)}"
    _, validation, test = fractions
    plan = assign(keys, [("validation", validation), ("test", test)], salt=SALT)
    index.split = {f: plan[digest] for digest, files in groups.items() for f in files}
    for name in none:
        same = groups.get(index.facts[name].sha256)
        if same:
            report.skipped_files[name] = f"byte-identical to {same[0]}, a logo file"
            continue
        index.labels[name] = []
        index.split[name] = "test"


def plan(
    listing: Listing, facts: Mapping[str, FileFacts], fractions: Sequence[float]
) -> FolderIndex:
    """The index of a listed and scanned folder, split by ``fractions`` (train,
    validation, test). Raises :class:`FolderError` when no brand is left, or a brand
    has no training example."""
    report = Report(dict(listing.skipped_files), dict(listing.skipped_rows))
    for name in listing.files:
        if facts[name].size is None:
            report.skipped_files[name] = facts[name].reason or "does not decode"
        elif facts[name].orientation != 1:
            report.rotated.append(name)
    index = FolderIndex(listing.folder, [], dict(facts), {}, {}, {}, {}, report)
    spelled = _spell(listing, report)
    for name, brand in listing.crops.items():
        if facts[name].size is not None:
            index.crop_brand[name] = spelled[brand_key(brand)]
    boxes, line = _boxes(listing, facts, spelled, report)
    index.brands = _check_boxes(index, boxes, line, report)
    named = {box.filename for box in boxes}
    for name in listing.photos:
        if facts[name].size is not None and name not in named and name not in report.skipped_files:
            report.skipped_files[name] = "no box in boxes.csv (photos without logos go in none/)"
    if not index.brands:
        raise FolderError(f"{listing.folder}: no usable logo (every file or row is skipped)")
    usable_none = [n for n in listing.none if facts[n].size is not None]
    _assign_splits(index, usable_none, fractions, report)
    _check_coverage(index, report)
    report.skipped_files = dict(sorted(report.skipped_files.items()))
    return index


def _check_coverage(index: FolderIndex, report: Report) -> None:
    """Notes each brand's empty splits; raises when a brand has no training example."""
    for config in (CROPS, IMAGES):
        counts = index.counts(config)
        if not any(counts.values()):
            continue  # no example at all: the config is not built
        missing = {
            brand: [split for split in SPLITS if not counts[split][brand]] for brand in index.brands
        }
        report.missing[config] = {brand: splits for brand, splits in missing.items() if splits}
    untrained = sorted(b for b, s in report.missing[CROPS].items() if "train" in s)
    if untrained:
        raise FolderError(
            f"{index.folder}: no training example of {', '.join(map(repr, untrained))}: "
            "their few images all went to validation or test; add images or lower the "
            "validation and test fractions (--split)"
        )
