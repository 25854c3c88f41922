"""Logo crops of one image: the crop window around a box, and the crops as JPEGs."""

from __future__ import annotations

import io
from collections.abc import Sequence

from PIL import Image

from tfds_flickr27 import annotations as ann

CROP_JPEG_QUALITY = 95


def crop_window(
    box: ann.Box, size: tuple[int, int], margin: float, square: bool
) -> tuple[int, int, int, int]:
    """The crop ``(left, top, right, bottom)`` around ``box`` in an image of ``size``.

    The window is centred on the box, made square (side = the box's longest side) when
    ``square``, grown by ``margin`` times its side on each side, then shifted to lie in
    the image; only a window larger than the image is clipped.
    """
    spans = []
    for low, high, limit in ((box.x1, box.x2, size[0]), (box.y1, box.y2, size[1])):
        side = max(box.x2 - box.x1, box.y2 - box.y1) if square else high - low
        side = min(side * (1 + 2 * margin), limit)
        start = min(max((low + high) / 2 - side / 2, 0), limit - side)
        spans.append((round(start), max(round(start + side), round(start) + 1)))
    (left, right), (top, bottom) = spans
    return left, top, min(right, size[0]), min(bottom, size[1])


def crop_jpegs(
    data: bytes,
    boxes: Sequence[ann.Box],
    margin: float,
    square: bool,
    quality: int = CROP_JPEG_QUALITY,
) -> list[bytes]:
    """One JPEG per box (in order) cropped from the JPEG ``data``, decoded once by Pillow.

    Raises ``ValueError`` with Pillow's reason when ``data`` does not decode.
    """
    try:
        with Image.open(io.BytesIO(data)) as source:
            image = source.convert("RGB")
    except (OSError, SyntaxError, EOFError, ValueError, Image.DecompressionBombError) as error:
        raise ValueError(f"Pillow cannot decode it: {error}") from None
    result = []
    for box in boxes:
        buffer = io.BytesIO()
        window = crop_window(box, image.size, margin, square)
        image.crop(window).save(buffer, format="JPEG", quality=quality)
        result.append(buffer.getvalue())
    return result
