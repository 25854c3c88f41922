"""Thumbnails of sampled photos, the evidence box drawn, as JPEG ``data:`` URIs.

A photo is opened by the original bytes of its CSV path
(:func:`logo_batch.result_csv.path_bytes`), decoded (a JPEG already downscaled by
Pillow's ``draft``), turned as its EXIF orientation says (the box is in pixels of the
turned photo) and shrunk to fit ``size`` pixels. A photo gone since the run, or one
that cannot be read, gives a :class:`Thumbnail` with no image and a note saying so.
"""

from __future__ import annotations

import base64
import io
import os
import re
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import NamedTuple

from PIL import Image, ImageDraw, ImageOps

from logo_batch.result_csv import path_bytes

THUMBNAIL_SIZE = 200
BOX_COLOUR = (255, 0, 255)
MAX_PIXELS = 50_000_000
"""Larger images (other than JPEG, which decodes downscaled) are not previewed."""
MISSING = "missing"
_URI = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+://")
_TURNED = (5, 6, 7, 8)  # EXIF orientations that swap width and height


class Thumbnail(NamedTuple):
    """A photo's thumbnail as a data URI, or ``None`` and why (``note``)."""

    uri: str | None
    width: int = 0
    height: int = 0
    note: str = ""


def parse_box(text: str) -> tuple[int, int, int, int] | None:
    """``x0 y0 x1 y1`` (a CSV ``box``) as integers; ``None`` when empty or malformed."""
    parts = text.split()
    if len(parts) != 4:
        return None
    try:
        x0, y0, x1, y1 = (int(float(p)) for p in parts)
    except ValueError:
        return None
    return (x0, y0, x1, y1) if x1 > x0 and y1 > y0 else None


def _open(path: str) -> Image.Image | Thumbnail:
    if _URI.match(path):
        return Thumbnail(None, note="not a local file")
    raw = path_bytes(path)
    if not os.path.exists(raw):
        return Thumbnail(None, note=MISSING)
    try:
        return Image.open(raw)
    except (OSError, ValueError, Image.DecompressionBombError) as error:
        return Thumbnail(None, note=f"unreadable: {error.__class__.__name__}")


def make_thumbnail(path: str, box: str = "", size: int = THUMBNAIL_SIZE) -> Thumbnail:
    """The thumbnail of the photo at CSV ``path`` with ``box`` drawn (see the module)."""
    opened = _open(path)
    if isinstance(opened, Thumbnail):
        return opened
    try:
        with opened as image:
            width, height = image.size
            if image.format != "JPEG" and width * height > MAX_PIXELS:
                return Thumbnail(None, note=f"too large to preview ({width}x{height})")
            turned = image.getexif().get(0x0112, 1) in _TURNED
            full = (height, width) if turned else (width, height)
            image.draft("RGB", (size, size))
            picture = ImageOps.exif_transpose(image).convert("RGB")
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        return Thumbnail(None, note=f"unreadable: {error.__class__.__name__}")
    picture.thumbnail((size, size))
    found = parse_box(box)
    if found is not None:
        scale_x, scale_y = picture.width / full[0], picture.height / full[1]
        x0, y0, x1, y1 = found
        line = max(2, size // 70)
        ImageDraw.Draw(picture).rectangle(
            (
                max(0, round(x0 * scale_x)),
                max(0, round(y0 * scale_y)),
                min(picture.width - 1, round(x1 * scale_x) - 1),
                min(picture.height - 1, round(y1 * scale_y) - 1),
            ),
            outline=BOX_COLOUR,
            width=line,
        )
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=82, subsampling=0)
    uri = "data:image/jpeg;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")
    return Thumbnail(uri, picture.width, picture.height)


def make_thumbnails(
    items: Iterable[tuple[str, str]], size: int = THUMBNAIL_SIZE, workers: int | None = None
) -> dict[str, Thumbnail]:
    """``{path: thumbnail}`` for ``(path, box)`` items, made on a few threads (Pillow
    decodes and encodes without holding the GIL)."""
    items = list(items)
    workers = workers or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        made = pool.map(lambda item: make_thumbnail(item[0], item[1], size), items)
        return {path: thumb for (path, _), thumb in zip(items, made, strict=True)}
