"""The one image preprocessing path shared by training, evaluation, predict and Beam.

An image becomes a model input in two steps:

1. decode to ``uint8`` RGB, ``[height, width, 3]``:
   - dataset records (JPEG bytes in TFRecords) are decoded inside ``tf.data`` by
     :func:`decode_image_tf` (:func:`decode_and_resize_tf` for a whole-image input);
   - files given to ``predict`` or the Beam job are decoded by :func:`load_image`
     (Pillow), which also survives the formats and failures a folder of arbitrary
     files holds (EXIF rotation, CMYK, 16-bit, palette, alpha, animated GIF,
     truncated files, decompression bombs), once
     :mod:`~logo_batch.inference.file_access` has opened the file safely.
   For JPEG both give identical pixels: TensorFlow's decoder is pinned to
   ``INTEGER_ACCURATE``, the IDCT Pillow's libjpeg-turbo uses (checked on all 1,079
   FlickrLogos-27 images and in the tests).
2. resize to ``[size, size, 3]`` float32 in ``[0, 255]`` with an antialiased bilinear
   (triangle) filter: :func:`resize_image` (TensorFlow) in ``tf.data``, its equal
   :func:`resize_array` (Pillow, the same pixels within 0.004; no TensorFlow to
   import) for files. Scaling to the backbone's range happens inside the model
   (:mod:`logo_batch.inference.layers`).

Where a whole image becomes one model input (training and evaluation records,
``predict`` and the Beam job in single mode: :func:`decode_and_resize_tf`,
:func:`preprocess_image_file`), a JPEG is decoded already downscaled in the DCT
domain, by the largest ratio of 1/2, 1/4, 1/8 that leaves both sides at least the
input size (:func:`dct_ratio`): libjpeg-turbo's scaled IDCT, which TensorFlow
(``decode_jpeg(ratio=...)``) and Pillow (``draft()``) both run, with identical pixels
(checked on all 1,079 FlickrLogos-27 images at every ratio and in the tests). The
resize then starts from at most twice the input size instead of the full photo.
Whole-photo mode cuts windows from the photo, the smallest ``f`` of each side: a JPEG
is decoded downscaled by the same rule for a shortest side of ``image_size / f``
(:func:`load_photo`, ``min_side``), so every window still has at least ``image_size``
pixels a side (a 12-megapixel photo at 1/4; FlickrLogos-27's photos, at most 500 px,
at full size), and its boxes are reported in the file's pixels. Training's boxes and
background windows are cut from the full-size decode.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING, BinaryIO

import numpy as np
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

from logo_batch.inference.file_access import (
    DEFAULT_MAX_BYTES,
    ImageDecodeError,
    ImageSource,
    open_image_file,
    source_label,
)

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
ORIENTATION_TAG = 0x0112  # EXIF; 5 to 8 turn the photo a quarter, swapping its sides
TRANSPOSED_ORIENTATIONS = (5, 6, 7, 8)

# Truncated files must fail loudly, never decode as half-grey pictures.
ImageFile.LOAD_TRUNCATED_IMAGES = False


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


def float_bands(image: np.ndarray | Image.Image) -> tuple[Image.Image, ...]:
    """An RGB image (``uint8 [H, W, 3]`` or a Pillow RGB image) as its three bands in
    Pillow's float mode ``F``: what :func:`resize_bands` resizes. Made once a photo,
    however many windows are cut from it."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected uint8 [H, W, 3], not {image.dtype} {image.shape}")
        image = Image.fromarray(np.ascontiguousarray(image))
    elif image.mode != "RGB":
        raise ValueError(f"expected an RGB image, not mode {image.mode}")
    return tuple(band.convert("F") for band in image.split())


def resize_bands(
    bands: tuple[Image.Image, ...],
    image_size: int,
    box: tuple[int, int, int, int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """:func:`float_bands` (or their window ``box``, ``(x0, y0, x1, y1)``: cropped
    first, as :func:`resize_image` sees a cropped array) resized to ``float32 [size,
    size, 3]`` in [0, 255], written into ``out`` when given."""
    if out is None:
        out = np.empty((image_size, image_size, 3), dtype=np.float32)
    for c, band in enumerate(bands):
        if box is not None:
            band = band.crop(tuple(int(v) for v in box))
        out[..., c] = np.asarray(band.resize((image_size, image_size), Image.Resampling.BILINEAR))
    return np.clip(out, 0.0, 255.0, out=out)


def resize_array(image: np.ndarray, image_size: int) -> np.ndarray:
    """:func:`resize_image` without TensorFlow: ``uint8 [H, W, 3]`` to ``float32 [size,
    size, 3]`` in [0, 255]. Pillow's bilinear resize of float images is the same
    antialiased triangle filter as TensorFlow's (``tf.image.resize(..., antialias=True)``):
    the same pixels within 0.004, at 0.65x its CPU time, and no TensorFlow to import
    (9 s and 680 MB a process here) in ``predict`` and the Beam workers. The bands are
    split and made float by Pillow (:func:`float_bands`, :func:`resize_bands`)."""
    return resize_bands(float_bands(image), image_size)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to RGB: 16-bit scaled, alpha composited on white; an
    RGB image is returned as it is."""
    if image.mode == "RGB":
        return image
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


def load_photo(
    source: ImageSource,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    min_side: int | None = None,
) -> tuple[np.ndarray, tuple[int, int]]:
    """Decodes an image file (a path, its bytes, or a seekable binary file) to
    ``uint8 [H, W, 3]`` RGB; also returns the photo's own ``(height, width)``.

    Refuses a file over ``max_bytes`` from its size, before reading it, and an image
    over ``max_pixels`` from its header, before decoding it; the header is read from
    the file (Pillow reads what it needs), never the whole file first. Applies the
    EXIF orientation and takes the first frame of animations. Raises
    :class:`ImageDecodeError` naming the file (``name``, else the path) and the
    problem. ``min_side``: a JPEG is decoded downscaled by :func:`dct_ratio` for that
    size (Pillow's ``draft``; the pixels of :func:`decode_image_tf`), both sides
    staying at least ``min_side``; the size returned is the photo's, as oriented.
    """
    image, size = _load_rgb(source, name, max_pixels, max_bytes, min_side)
    return np.asarray(image, dtype=np.uint8), size


def _load_rgb(
    source: ImageSource, name: str | None, max_pixels: int, max_bytes: int, min_side: int | None
) -> tuple[Image.Image, tuple[int, int]]:
    """:func:`load_photo` as a Pillow RGB image (no NumPy copy for :func:`float_bands`)."""
    label = source_label(source, name)
    with open_image_file(source, label, max_bytes) as handle:
        return _decode(handle, label, max_pixels, min_side)


def load_image(
    source: ImageSource,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
    resize_to: int | None = None,
) -> np.ndarray:
    """:func:`load_photo`'s pixels. ``resize_to``: the image will be resized whole to
    ``resize_to`` px, so a JPEG is decoded downscaled by :func:`dct_ratio`."""
    pixels, _ = load_photo(
        source, name=name, max_pixels=max_pixels, max_bytes=max_bytes, min_side=resize_to
    )
    return pixels


def _decode(
    handle: BinaryIO, label: str, max_pixels: int, min_side: int | None
) -> tuple[Image.Image, tuple[int, int]]:
    try:
        image = Image.open(handle)
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
        if min_side is not None and image.format in JPEG_FORMATS:
            image.draft(None, (min_side, min_side))  # dct_ratio's rule
        image.load()
        if image.getexif().get(ORIENTATION_TAG) in TRANSPOSED_ORIENTATIONS:
            height, width = width, height
        image = _to_rgb(ImageOps.exif_transpose(image))  # a copy: the file may close
    except Image.DecompressionBombError as error:
        raise ImageDecodeError(label, f"decompression bomb: {error}") from error
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageDecodeError(label, f"corrupt or truncated image data: {error}") from error
    if image.mode != "RGB" or 0 in image.size:
        raise ImageDecodeError(label, f"decoded to an unusable {image.mode} image of {image.size}")
    return image, (height, width)


def preprocess_image_file(
    source: ImageSource,
    image_size: int,
    *,
    name: str | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray:
    """Loads and resizes one image file: the model input ``float32 [size, size, 3]``."""
    image, _ = _load_rgb(source, name, max_pixels, max_bytes, min_side=image_size)
    return resize_bands(float_bands(image), image_size)
