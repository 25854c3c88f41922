"""Whether an image of the archive is a JPEG that decodes, and why not.

The build must keep only images that both decoders the dataset meets can read: Pillow
(which the ``crops`` config crops with) and TensorFlow's JPEG decoder (which TFDS and the
trainer read the ``images`` config with). TensorFlow's is the stricter of the two: it
fails on every damaged JPEG Pillow fails on, and also on some Pillow decodes to garbage
(a JPEG whose compressed data ends in zeros). So the check that runs on every image is
Pillow reading the header (format, size) and TensorFlow decoding at 1/8 scale: the
entropy-coded data, where damage shows, is read in full, only the inverse DCT is done on
fewer pixels. Only when that fails are both full decodes run, to give the reason.
:func:`check_images` runs the same check on a batch, TensorFlow's part in one graph call
(an eager call per image costs about as much as a decode at 1/8 scale).
"""

from __future__ import annotations

import functools
import io
import math
from collections.abc import Sequence

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
        header = tuple(int(n) for n in tf.io.extract_jpeg_shape(data).numpy()[:2])
        if _agrees(size, (*pixels.shape[:2], *header)):
            return size
        failure = f"decoders disagree on the size: {size} vs {header}"
    full_decode_check(data)  # raises the full decodes' reason
    raise ValueError(failure)


def _agrees(size: tuple[int, int], shapes) -> bool:
    """Whether TensorFlow's 1/8-scale decode ``shapes[:2]`` and header ``shapes[2:]``
    match the header ``size`` Pillow read (the acceptance test of :func:`check_image`)."""
    scaled = (math.ceil(size[1] / CHECK_RATIO), math.ceil(size[0] / CHECK_RATIO))
    rows, columns, height, width = (int(n) for n in shapes)
    return (rows, columns) == scaled and (height, width) == (size[1], size[0])


@functools.cache
def _decode_shapes():
    """A graph function: for each JPEG of a batch, the shape of TensorFlow's 1/8-scale
    decode and of its header, ``[rows, columns, height, width]``; fails if any fails."""
    import tensorflow as tf

    def one(data):
        pixels = tf.io.decode_jpeg(data, channels=3, ratio=CHECK_RATIO)
        return tf.concat([tf.shape(pixels)[:2], tf.io.extract_jpeg_shape(data)[:2]], 0)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def shapes(batch):
        return tf.map_fn(
            one, batch, fn_output_signature=tf.TensorSpec([4], tf.int32), parallel_iterations=1
        )

    return shapes


def check_images(images: Sequence[bytes]) -> list[tuple[int, int] | ValueError]:
    """:func:`check_image` of each of ``images``: its size, or the ``ValueError`` it
    raises (returned, not raised). TensorFlow decodes the batch in one call; if any image
    fails there, each of the batch is checked alone, so every answer is check_image's.
    """
    import tensorflow as tf

    results: list[tuple[int, int] | ValueError | None] = [None] * len(images)
    sizes: dict[int, tuple[int, int]] = {}
    for i, data in enumerate(images):
        try:
            sizes[i] = _header_size(data)
        except ValueError as error:
            results[i] = error
    if sizes:
        try:
            shapes = _decode_shapes()(tf.constant([images[i] for i in sizes])).numpy()
        except tf.errors.OpError:
            shapes = None
        for k, (i, size) in enumerate(sizes.items()):
            if shapes is not None and _agrees(size, shapes[k]):
                results[i] = size
                continue
            try:
                results[i] = check_image(images[i])
            except ValueError as error:
                results[i] = error
    return results
