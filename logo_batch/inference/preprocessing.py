"""The one image preprocessing path shared by training, evaluation, predict and Beam.

An image becomes a model input in two steps:

1. decode to ``uint8`` RGB, ``[height, width, 3]``:
   - dataset records (JPEG bytes in TFRecords) are decoded inside ``tf.data`` by
     :func:`decode_image_tf` (:func:`decode_and_resize_tf` for a whole-image input);
   - files given to ``predict`` or the Beam job are decoded by :func:`load_image`
     (Pillow), which also survives the formats and failures a folder of arbitrary
     files holds (EXIF rotation, CMYK, 16-bit, palette, alpha, animated GIF,
     truncated files, decompression bombs).
   For JPEG both give identical pixels: TensorFlow's decoder is pinned to
   ``INTEGER_ACCURATE``, the IDCT Pillow's libjpeg-turbo uses (checked on all 1,079
   FlickrLogos-27 images and in the tests).
2. :func:`resize_image` to ``[size, size, 3]`` float32 in ``[0, 255]``. Scaling to the
   backbone's range happens inside the model (:mod:`logo_batch.inference.layers`).

Where a whole image becomes one model input (training and evaluation records,
``predict`` and the Beam job in single mode: :func:`decode_and_resize_tf`,
:func:`preprocess_image_file`), a JPEG is decoded already downscaled in the DCT
domain, by the largest ratio of 1/2, 1/4, 1/8 that leaves both sides at least the
input size (:func:`dct_ratio`): libjpeg-turbo's scaled IDCT, which TensorFlow
(``decode_jpeg(ratio=...)``) and Pillow (``draft()``) both run, with identical pixels
(checked on all 1,079 FlickrLogos-27 images at every ratio and in the tests). The
resize then starts from at most twice the input size instead of the full photo.
Where windows or boxes are cut from a photo (whole-photo mode, background windows)
the photo is decoded at full size: a crop needs the pixels of its own region.
"""

from __future__ import annotations

import io
import os
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

if TYPE_CHECKING:  # TensorFlow is imported where an op runs: reading files needs none
    import tensorflow as tf

# 50 megapixels: far above any photo the classifier needs, far below a bomb.
DEFAULT_MAX_PIXELS = 50_000_000
# JPEG DCT-domain scaling ratios libjpeg-turbo's decoder offers (TensorFlow and Pillow).
DCT_RATIOS = (1, 2, 4, 8)
JPEG_DCT_METHOD = "INTEGER_ACCURATE"  # libjpeg's JDCT_ISLOW: what Pillow decodes with
# Names the decode + resize recipe: file caches of model inputs carry it, so a cache
# filled by an earlier recipe is never read back as this one's.
PREPROCESSING_ID = "dct1"
JPEG_FORMATS = ("JPEG", "MPO")  # Pillow's names; an MPO's first frame is a JPEG
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".bmp", ".webp")

# Truncated files must fail loudly, never decode as half-grey pictures.
ImageFile.LOAD_TRUNCATED_IMAGES = False


class ImageDecodeError(ValueError):
    """An image file that cannot be turned into a model input; names file and reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def is_image_path(path: str) -> bool:
    """True when ``path`` has an image extension we classify (any letter case)."""
    return path.lower().endswith(IMAGE_EXTENSIONS)


def dct_ratio(height: int, width: int, image_size: int) -> int:
    """The DCT scaling ratio a JPEG resized whole to ``image_size`` is decoded at.

    The largest of :data:`DCT_RATIOS` with ``ratio * image_size <= min(height, width)``:
    both decoded sides (``ceil(side / ratio)``) stay at least ``image_size``, so the
    resize still only shrinks. The rule Pillow's ``draft()`` applies to a requested
    ``image_size`` x ``image_size``.
    """
    shortest = min(height, width)
    return max(r for r in DCT_RATIOS if r * image_size <= shortest or r == 1)


def _dct_ratio_index_tf(height: tf.Tensor, width: tf.Tensor, image_size: int) -> tf.Tensor:
    """:func:`dct_ratio` in a graph, as its index in :data:`DCT_RATIOS`."""
    import tensorflow as tf

    shortest = tf.minimum(height, width)
    index = tf.constant(0, tf.int32)
    for position, ratio in enumerate(DCT_RATIOS):
        index = tf.where(ratio * image_size <= shortest, position, index)
    return index


def _decode_jpeg_tf(jpeg: tf.Tensor, ratio: int = 1) -> tf.Tensor:
    import tensorflow as tf

    return tf.io.decode_jpeg(jpeg, channels=3, dct_method=JPEG_DCT_METHOD, ratio=ratio)


def decode_image_tf(image_bytes: tf.Tensor, resize_to: int | None = None) -> tf.Tensor:
    """Decodes encoded image bytes to ``uint8 [H, W, 3]`` inside a TF graph.

    ``resize_to``: the image will be resized whole to ``resize_to`` px, so a JPEG is
    decoded downscaled by :func:`dct_ratio` (never where a crop will be cut from it).
    """
    import tensorflow as tf

    def jpeg() -> tf.Tensor:
        if resize_to is None:
            return _decode_jpeg_tf(image_bytes)
        shape = tf.image.extract_jpeg_shape(image_bytes)
        index = _dct_ratio_index_tf(shape[0], shape[1], resize_to)
        branches = [lambda r=r: _decode_jpeg_tf(image_bytes, r) for r in DCT_RATIOS]
        return tf.switch_case(index, branches)

    image = tf.cond(
        tf.io.is_jpeg(image_bytes),
        jpeg,
        lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def decode_and_resize_tf(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """Encoded image bytes to the model input ``float32 [size, size, 3]`` in a TF graph
    (a JPEG decoded DCT-downscaled): the tensor :func:`preprocess_image_file` gives."""
    return resize_image(decode_image_tf(image_bytes, resize_to=image_size), image_size)


def _resize(image: tf.Tensor, image_size: int | tf.Tensor) -> tf.Tensor:
    import tensorflow as tf

    size = tf.stack([image_size, image_size]) if isinstance(image_size, tf.Tensor) else None
    resized = tf.image.resize(
        tf.cast(image, tf.float32),
        (image_size, image_size) if size is None else size,
        method="bilinear",
        antialias=True,
    )
    return tf.clip_by_value(resized, 0.0, 255.0)


# Called eagerly (predict, Beam, whole-photo windows), the same ops run as one graph:
# about half the CPU time of running them op by op, and the same kernels, so the same
# pixels as inside tf.data.
@cache
def _resize_graph():
    import tensorflow as tf

    return tf.function(_resize, reduce_retracing=True)


def resize_image(image: tf.Tensor | np.ndarray, image_size: int) -> tf.Tensor:
    """Resizes a ``uint8 [H, W, 3]`` image to ``float32 [size, size, 3]`` in [0, 255]."""
    import tensorflow as tf

    image = tf.convert_to_tensor(image)
    if tf.executing_eagerly():
        return _resize_graph()(image, tf.constant(image_size, tf.int32))
    return _resize(image, image_size)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to RGB: 16-bit scaled, alpha composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(np.rint(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    elif image.mode == "F":
        array = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        image = Image.fromarray(array)
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def load_image(
    source: str | os.PathLike | bytes,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    resize_to: int | None = None,
) -> np.ndarray:
    """Decodes an image file (path or bytes) to ``uint8 [H, W, 3]`` RGB.

    Applies the EXIF orientation, takes the first frame of animations, and refuses
    images over ``max_pixels`` before decoding them. Raises :class:`ImageDecodeError`
    naming the file (``name``, else the path) and the problem. ``resize_to``: the
    image will be resized whole to ``resize_to`` px, so a JPEG is decoded downscaled
    by :func:`dct_ratio` (Pillow's ``draft``; the pixels of :func:`decode_image_tf`).
    """
    label = name or (str(source) if not isinstance(source, bytes) else "<bytes>")
    if isinstance(source, bytes):
        data = source
    else:
        try:
            data = Path(source).read_bytes()
        except OSError as error:
            raise ImageDecodeError(label, f"cannot read file: {error.strerror or error}") from error
    if not data:
        raise ImageDecodeError(label, "empty file (0 bytes)")
    try:
        image = Image.open(io.BytesIO(data))
    except UnidentifiedImageError as error:
        raise ImageDecodeError(label, "not a recognised image format") from error
    except Image.DecompressionBombError as error:
        # Pillow refuses > 2 x MAX_IMAGE_PIXELS in open(), before max_pixels is checked.
        raise ImageDecodeError(
            label, f"refused before decoding (possible decompression bomb): {error}"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageDecodeError(label, f"unreadable image header: {error}") from error
    width, height = image.size
    if width * height > max_pixels:
        raise ImageDecodeError(
            label,
            f"image is {width}x{height} = {width * height:,} pixels, over the limit of "
            f"{max_pixels:,}: refused before decoding (possible decompression bomb)",
        )
    try:
        image.seek(0)
        if resize_to is not None and image.format in JPEG_FORMATS:
            image.draft(None, (resize_to, resize_to))  # dct_ratio's rule
        image.load()
        image = ImageOps.exif_transpose(image)
        array = np.asarray(_to_rgb(image), dtype=np.uint8)
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(label, f"decompression bomb: {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageDecodeError(label, f"corrupt or truncated image data: {error}") from error
    if array.ndim != 3 or array.shape[2] != 3 or 0 in array.shape:
        raise ImageDecodeError(label, f"decoded to an unusable shape {array.shape}")
    return array


def preprocess_image_file(
    source: str | os.PathLike | bytes,
    image_size: int,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
) -> np.ndarray:
    """Loads and resizes one image file: the model input ``float32 [size, size, 3]``."""
    image = load_image(source, name=name, max_pixels=max_pixels, resize_to=image_size)
    return resize_image(image, image_size).numpy()
