"""A small run's results made for the report's tests: real photos written with Pillow
and the rows a run would give them (brands, none, unknown, errors, boxes, a missing and
a corrupt photo, a non-UTF-8 name, a name with ``<&"``). Not a test module."""

from __future__ import annotations

import csv
import os
from pathlib import Path

from PIL import Image

from logo_batch.result_csv import ROW_COLUMNS, escape_path

GREY = (128, 128, 128)
ADIDAS = [f"adidas{i}.jpg" for i in range(6)]


def photo(path: Path, size=(400, 300), exif_orientation: int | None = None) -> None:
    kwargs = {}
    if exif_orientation:
        exif = Image.Exif()
        exif[0x0112] = exif_orientation
        kwargs["exif"] = exif.tobytes()
    fmt = "PNG" if path.suffix == ".png" else "JPEG"
    Image.new("RGB", size, GREY).save(os.fsencode(path), fmt, quality=95, **kwargs)


def row(path: str, label: str, score: float | None, top: str = "", **extra) -> dict:
    """A results row (the Beam job's columns); ``top`` is the best brand (else ``label``)."""
    top = top or label
    fields = {
        "path": path,
        "label": label,
        "score": "" if score is None else f"{score:.6f}",
        "top_labels": "" if score is None else f"{top};Other",
        "top_scores": "" if score is None else f"{score:.6f};0.010000",
        "error": "",
        "box": "",
        "mode": "whole",
        "size": "100",
        "modified": "2026-01-01T00:00:00.000000Z",
        "fingerprint": "fp1",
    }
    return {**fields, **extra}


def write_csv(path: Path, rows: list[dict], columns=ROW_COLUMNS) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def make_run(tmp_path: Path) -> list[dict]:
    """The rows of a small run; its photos are written in ``tmp_path/photos``."""
    photos = tmp_path / "photos"
    photos.mkdir()
    rows = []
    for i, name in enumerate(ADIDAS):
        photo(photos / name)
        rows.append(row(str(photos / name), "Adidas", 0.60 + 0.05 * i, box="100 50 300 250"))
    photo(photos / "nike.png", size=(200, 100))
    rows.append(row(str(photos / "nike.png"), "Nike", 0.95))
    # Stored 400x200, shown turned (EXIF 6) as 200x400: the box is in the turned photo.
    photo(photos / "turned.jpg", size=(400, 200), exif_orientation=6)
    rows.append(row(str(photos / "turned.jpg"), "Nike", 0.90, box="20 300 180 380"))
    raw = os.fsencode(photos) + b"/caf\xe9.jpg"
    photo(Path(os.fsdecode(raw)))
    rows.append(row(escape_path(os.fsdecode(raw)), "Nike", 0.80))
    photo(photos / 'a<b&"c.jpg')
    rows.append(row(str(photos / 'a<b&"c.jpg'), "none", 0.58, top="Pepsi"))
    rows.append(row(str(photos / "gone.jpg"), "none", 0.50, top="Pepsi"))  # missing
    (photos / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    rows.append(row(str(photos / "corrupt.jpg"), "none", 0.20, top="Fedex"))
    rows.append(row(str(photos / "crop.jpg"), "unknown", 0.30, top="Nike", mode="single"))
    for i in range(3):
        rows.append(row(str(photos / f"bad{i}.jpg"), "", None, error="image is corrupt"))
    rows.append(row(str(photos / "pipe"), "", None, error="not a regular file"))
    return rows
