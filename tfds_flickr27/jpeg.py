"""Whether an image of the archive is a JPEG that decodes, and why not.

The build must keep only images that both decoders the dataset meets can read: Pillow
(which the ``crops`` config crops with) and TensorFlow's JPEG decoder (which TFDS and the
trainer read the ``images`` config with). TensorFlow's is the stricter of the two: it
fails on every damaged JPEG Pillow fails on, and also on some Pillow decodes to garbage
(a JPEG whose compressed data ends in zeros). So the check that runs on every image is
Pillow reading the header (format, size) and TensorFlow decoding at 1/8 scale: the
entropy-coded data, where damage shows, is read in full, only the inverse DCT is done on
fewer pixels. Only when that fails are both full decodes run, to give the reason.
"""

from __future__ import annotations

import io
import math

from PIL import Image, UnidentifiedImageError

# TensorFlow decodes the check at this scale (1, 2, 4 or 8): same errors, less work.
CHECK_RATIO = 8


def _header_size(data: bytes) -> tuple[int, int]:
    """``(width, height)`` from the header; ``ValueError`` if it is not a JPEG."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise ValueError(f"not a JPEG but {image.format}")
            return image.size
    except UnidentifiedImageError:
        raise ValueError("cannot identify image data (not a JPEG)") from None
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise ValueError(f"Pillow cannot decode it: {error}") from None


def full_decode_check(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of a JPEG that Pillow and TensorFlow both decode in full.

    Raises ``ValueError`` with why not: Pillow's reason first, then TensorFlow's, then a
    size the two disagree on. :func:`check_image` gives the same answers faster.
    """
    import tensorflow as tf

    _header_size(data)
    try:
        with Image.open(io.BytesIO(data)) as image:
            image.load()  # raises on truncated data (Image.LOAD_TRUNCATED_IMAGES is off)
            size = image.size
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise ValueError(f"Pillow cannot decode it: {error}") from None
    try:
        pixels = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    except tf.errors.OpError as error:
        raise ValueError(f"TensorFlow cannot decode it: {error.message.strip()}") from None
    if tuple(pixels.shape[:2]) != (size[1], size[0]):
        raise ValueError(f"decoders disagree on the size: {size} vs {pixels.shape}")
    return size


def check_image(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of a JPEG that decodes fully; raises ``ValueError`` with why not.

    Accepts and rejects what :func:`full_decode_check` does, with the same reasons: the
    header by Pillow, the data by TensorFlow at 1/:data:`CHECK_RATIO` scale (the
    entropy-coded data is read in full whatever the scale), the full decodes only to
    explain a failure.
    """
    import tensorflow as tf

    size = _header_size(data)
    try:
        pixels = tf.io.decode_jpeg(data, channels=3, ratio=CHECK_RATIO)
        failure = None
    except tf.errors.OpError as error:
        failure = f"TensorFlow cannot decode it: {error.message.strip()}"
    if failure is None:
        expected = (math.ceil(size[1] / CHECK_RATIO), math.ceil(size[0] / CHECK_RATIO))
        header = tuple(int(n) for n in tf.io.extract_jpeg_shape(data).numpy()[:2])
        if tuple(pixels.shape[:2]) == expected and header == (size[1], size[0]):
            return size
        failure = f"decoders disagree on the size: {size} vs {header}"
    full_decode_check(data)  # raises the full decodes' reason
    raise ValueError(failure)
