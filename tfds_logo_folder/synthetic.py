"""Small generated logo folders in the layout ``logo-batch dataset build`` reads.

Logos are FlickrLogos-27's synthetic ones (:mod:`tfds_flickr27.synthetic`: a shape,
colour and letter per brand on a cluttered background), so a tiny CNN learns them in
seconds. Used by the tests and the walk-through; the same arguments give the same files.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from tfds_flickr27 import annotations as ann
from tfds_flickr27.crops import crop_jpegs
from tfds_flickr27.synthetic import render_photo
from tfds_logo_folder.layout import BOXES_COLUMNS, BOXES_FILE, CROPS_DIR, NONE_DIR, PHOTOS_DIR

DEFAULT_BRANDS = ("Acme", "Blue Bird", "zeta")


def write_synthetic_folder(
    path: str | os.PathLike,
    brands: Sequence[str] = DEFAULT_BRANDS,
    *,
    crops_per_brand: int = 0,
    photos_per_brand: int = 0,
    none_photos: int = 0,
    image_size: int = 96,
    seed: int = 0,
) -> Path:
    """Writes ``crops/<Brand>/``, ``photos/`` with ``boxes.csv`` and ``none/`` (each only
    when asked for) into the folder ``path``; returns it. Every third photo holds two
    logos of its brand."""
    folder = Path(path)
    rng = np.random.default_rng(seed)
    rows = []
    for b, brand in enumerate(brands):
        for i in range(crops_per_brand):
            data, logos = render_photo(rng, image_size, [brand], brands)
            box = ann.Box("", brand, *logos[0].box)
            crop = crop_jpegs(data, [box], margin=0.15, square=True)[0]
            _write(folder / CROPS_DIR / brand / f"{i:03d}.jpg", crop)
        for i in range(photos_per_brand):
            data, logos = render_photo(rng, image_size, [brand] * (2 if i % 3 == 2 else 1), brands)
            name = f"{b:02d}_{i:03d}.jpg"
            _write(folder / PHOTOS_DIR / name, data)
            rows.extend([name, logo.label, *logo.box] for logo in logos)
    for i in range(none_photos):
        _write(folder / NONE_DIR / f"{i:03d}.jpg", render_photo(rng, image_size, [])[0])
    if rows:
        with open(folder / BOXES_FILE, "w", newline="", encoding="utf-8") as file:
            writer = csv.writer(file)
            writer.writerow(BOXES_COLUMNS)
            writer.writerows(rows)
    return folder


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
