"""A user's logo folder as files and rows (nothing is decoded here).

```
FOLDER/
  crops/<Brand>/*.jpg   logo crops, one folder per brand (subfolders allowed)
  photos/*.jpg          whole photos with logos (subfolders allowed)
  boxes.csv             filename,brand,x1,y1,x2,y2 (header; one row per box; filename
                        relative to photos/; pixels of the photo as shown, decimals rounded)
  none/*.jpg            photos with none of the brands
```

Names starting with ``.`` are ignored (``.DS_Store``, ``.git``); every other entry is
either used or reported with the reason (a file is a JPEG by its content, whatever its
name). Brand names come from the ``crops/`` folder names and the CSV's brand column:
runs of white space become one space, and names equal but for case are one brand,
spelled as first seen (``crops/`` folders in sorted order, then ``boxes.csv`` top to
bottom).
"""

from __future__ import annotations

import csv
import dataclasses
import math
import os
from pathlib import Path

from tfds_flickr27.annotations import NONE_LABEL, box_problem

CROPS_DIR, PHOTOS_DIR, NONE_DIR = "crops", "photos", "none"
BOXES_FILE = "boxes.csv"
BOXES_COLUMNS = ("filename", "brand", "x1", "y1", "x2", "y2")


class FolderError(ValueError):
    """The folder cannot be built as it is; the message names the file and the problem."""


@dataclasses.dataclass(frozen=True)
class Row:
    """One well-formed row of ``boxes.csv``."""

    line: int
    photo: str  # the photo's path in the folder: ``photos/<filename>``
    brand: str  # as written, white space runs made one space
    box: tuple[int, int, int, int]  # x1, y1, x2, y2 in pixels, x2 and y2 exclusive

    @property
    def where(self) -> str:
        return f"{BOXES_FILE}:{self.line}"


@dataclasses.dataclass
class Listing:
    """What the folder holds, before any image is read."""

    folder: Path
    crops: dict[str, str]  # "crops/<Brand>/x.jpg" -> the folder's brand spelling
    photos: list[str]  # "photos/x.jpg"
    none: list[str]  # "none/x.jpg"
    rows: list[Row]  # the well-formed rows of boxes.csv, in file order
    skipped_files: dict[str, str]  # path -> why it is not used
    skipped_rows: dict[str, str]  # "boxes.csv:<line>" -> why the row is not used

    @property
    def files(self) -> list[str]:
        """Every image file to read: crops, photos, none."""
        return [*self.crops, *self.photos, *self.none]


def brand_spelling(name: str) -> str:
    """A brand name as used: runs of white space made one space, none at the ends."""
    return " ".join(name.split())


def brand_key(name: str) -> str:
    """What makes two spellings one brand: equal but for case and white space."""
    return brand_spelling(name).casefold()


def _walk(folder: Path, top: str) -> list[str]:
    """Relative POSIX paths of the files under ``folder/top``, sorted, hidden ones left out."""
    found = []
    for root, dirs, files in os.walk(folder / top):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        relative = Path(root).relative_to(folder).as_posix()
        found.extend(f"{relative}/{name}" for name in files if not name.startswith("."))
    return sorted(found)


def _brand_problem(spelling: str) -> str | None:
    if not spelling:
        return "empty brand"
    if any(not c.isprintable() for c in spelling):
        return "brand has control characters"
    if brand_key(spelling) == NONE_LABEL:
        return f"{NONE_LABEL!r} is the no-logo label: put photos without logos in {NONE_DIR}/"
    return None


def read_folder(folder: str | os.PathLike) -> Listing:
    """Lists the folder's files and reads ``boxes.csv``; raises :class:`FolderError` when
    the folder has nothing to build or ``boxes.csv`` cannot be read as a whole."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FolderError(f"{folder}: not a folder")
    listing = Listing(folder, {}, [], [], [], {}, {})
    for entry in sorted(os.listdir(folder)):
        if entry.startswith(".") or entry in (CROPS_DIR, PHOTOS_DIR, NONE_DIR, BOXES_FILE):
            continue
        listing.skipped_files[entry] = (
            f"ignored: the folder holds {CROPS_DIR}/, {PHOTOS_DIR}/, {NONE_DIR}/ and {BOXES_FILE}"
        )
    for path in _walk(folder, CROPS_DIR):
        parts = path.split("/")
        problem = "not in a brand folder (crops/<Brand>/...)" if len(parts) < 3 else None
        problem = problem or _brand_problem(brand_spelling(parts[1]))
        if problem:
            listing.skipped_files[path] = problem
        else:
            listing.crops[path] = brand_spelling(parts[1])
    listing.photos = _walk(folder, PHOTOS_DIR)
    listing.none = _walk(folder, NONE_DIR)
    boxes = folder / BOXES_FILE
    if boxes.exists():
        if not listing.photos:
            raise FolderError(f"{boxes}: there is no {PHOTOS_DIR}/ folder with photos to box")
        listing.rows, listing.skipped_rows = read_boxes(boxes)
    elif listing.photos:
        raise FolderError(
            f"{folder}: {PHOTOS_DIR}/ holds {len(listing.photos)} files but there is no "
            f"{BOXES_FILE} ({','.join(BOXES_COLUMNS)}) saying where their logos are"
        )
    if not listing.crops and not listing.photos:
        raise FolderError(
            f"{folder}: no logos to learn: neither {CROPS_DIR}/<Brand>/ crops nor "
            f"{PHOTOS_DIR}/ with {BOXES_FILE}"
        )
    return listing


def _header(path: Path, header: list[str] | None) -> dict[str, int]:
    """Column of each of BOXES_COLUMNS; raises when one is missing."""
    names = [name.strip().casefold() for name in header or []]
    missing = [name for name in BOXES_COLUMNS if name not in names]
    if missing:
        raise FolderError(
            f"{path}: line 1 must be the header {','.join(BOXES_COLUMNS)}, found "
            f"{','.join(header or []) or 'nothing'} (missing {', '.join(missing)})"
        )
    return {name: names.index(name) for name in BOXES_COLUMNS}


def _coordinate(text: str) -> int:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(text)
    return round(value)


def _row(fields: list[str], columns: dict[str, int], width: int, line: int) -> Row | str:
    """A row, or why it is malformed."""
    if len(fields) != width:
        return f"expected {width} fields, found {len(fields)}"
    filename = fields[columns["filename"]].strip().replace("\\", "/").lstrip("/")
    if not filename:
        return "empty filename"
    brand = brand_spelling(fields[columns["brand"]])
    problem = _brand_problem(brand)
    if problem:
        return problem
    try:
        box = tuple(_coordinate(fields[columns[name]]) for name in ("x1", "y1", "x2", "y2"))
    except ValueError:
        return "x1, y1, x2, y2 must be numbers (pixels)"
    problem = box_problem(*box)
    if problem:
        return problem
    return Row(line, f"{PHOTOS_DIR}/{filename}", brand, box)


def read_boxes(path: str | os.PathLike) -> tuple[list[Row], dict[str, str]]:
    """The well-formed rows of a ``boxes.csv`` and why each other row is skipped (by
    ``boxes.csv:<line>``); a row repeating an earlier box is skipped as a repeat."""
    path = Path(path)
    rows: list[Row] = []
    skipped: dict[str, str] = {}
    seen: dict[tuple[str, str, tuple[int, ...]], int] = {}
    try:
        with open(path, encoding="utf-8-sig", newline="") as file:
            reader = csv.reader(file)
            header = next(reader, None)
            columns = _header(path, header)
            for fields in reader:
                if not any(field.strip() for field in fields):
                    continue
                line = reader.line_num
                row = _row(fields, columns, len(header), line)
                if isinstance(row, str):
                    skipped[f"{BOXES_FILE}:{line}"] = f"{row}: {','.join(fields)!r}"
                    continue
                key = (row.photo, brand_key(row.brand), row.box)
                if key in seen:
                    skipped[row.where] = f"repeats the box of {BOXES_FILE}:{seen[key]}"
                    continue
                seen[key] = line
                rows.append(row)
    except UnicodeDecodeError as error:
        raise FolderError(f"{path}: not UTF-8 text ({error})") from None
    except csv.Error as error:
        raise FolderError(f"{path}: line {reader.line_num}: not CSV: {error}") from None
    return rows, skipped
