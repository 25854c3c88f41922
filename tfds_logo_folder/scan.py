"""Reads every image file of a folder once: its sha256, whether it decodes, its size.

The decode check is the FlickrLogos-27 builder's (:func:`tfds_flickr27.jpeg.check_images`:
a JPEG both Pillow and TensorFlow decode), run in batches on one thread per core
(:func:`tfds_flickr27.parallel.ordered_map`). Photos taken upright on a phone are often
stored sideways with an EXIF orientation: the size reported is the photo as shown (EXIF
orientation applied), which is how predict and the Beam job see it and what
:func:`upright` stores in the dataset.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import os
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageOps

from tfds_flickr27.crops import CROP_JPEG_QUALITY
from tfds_flickr27.jpeg import check_images
from tfds_flickr27.parallel import batches, ordered_map

_BATCH = 16  # files decode-checked per TensorFlow call
_ORIENTATION_TAG = 0x0112
_TRANSPOSED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


@dataclasses.dataclass(frozen=True)
class FileFacts:
    """One file as the scan read it."""

    sha256: str
    size: tuple[int, int] | None  # (width, height) as shown; None when it does not decode
    reason: str | None  # why it does not decode
    orientation: int = 1  # its EXIF orientation (1: stored as shown)


def orientation(data: bytes) -> int:
    """The EXIF orientation of a JPEG (1 when absent or not one of 1..8)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            value = image.getexif().get(_ORIENTATION_TAG, 1)
    except Exception:  # noqa: BLE001 - an unreadable EXIF block is no rotation
        return 1
    return value if value in range(1, 9) else 1


def upright(data: bytes, rotation: int) -> bytes:
    """The JPEG as shown: unchanged when ``rotation`` (its EXIF orientation) is 1, else
    turned by Pillow and encoded again (quality 95, as the crops; no EXIF block)."""
    if rotation == 1:
        return data
    with Image.open(io.BytesIO(data)) as image:
        turned = ImageOps.exif_transpose(image).convert("RGB")
        buffer = io.BytesIO()
        turned.save(buffer, format="JPEG", quality=CROP_JPEG_QUALITY)
    return buffer.getvalue()


def _read(path: Path) -> bytes | str:
    try:
        return path.read_bytes()
    except OSError as error:
        return f"cannot read it: {error.strerror or error}"


def _scan_batch(items: list[tuple[str, Path]]) -> list[tuple[str, FileFacts]]:
    contents = [_read(path) for _, path in items]
    readable = [data for data in contents if isinstance(data, bytes)]
    checked = iter(check_images(readable))
    result = []
    for (name, _), data in zip(items, contents, strict=True):
        if isinstance(data, str):
            result.append((name, FileFacts("", None, data)))
            continue
        digest = hashlib.sha256(data).hexdigest()
        size = next(checked)
        if isinstance(size, ValueError):
            result.append((name, FileFacts(digest, None, str(size))))
            continue
        rotation = orientation(data)
        if rotation in _TRANSPOSED:
            size = (size[1], size[0])
        result.append((name, FileFacts(digest, size, None, rotation)))
    return result


def scan_files(folder: str | os.PathLike, names: Sequence[str]) -> dict[str, FileFacts]:
    """The facts of each file ``names`` (paths relative to ``folder``), read once each."""
    folder = Path(folder)
    items = [(name, folder / name) for name in names]
    found = ordered_map(_scan_batch, batches(items, _BATCH))
    return dict(itertools.chain.from_iterable(found))
