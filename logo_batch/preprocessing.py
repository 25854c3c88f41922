"""The one image preprocessing path shared by training, evaluation, predict and Beam.

An image becomes a model input in two steps:

1. decode to ``uint8`` RGB, ``[height, width, 3]``:
   - dataset records (JPEG bytes in TFRecords) are decoded inside ``tf.data`` by
     :func:`decode_image_tf`;
   - files given to ``predict`` or the Beam job are decoded by :func:`load_image`
     (Pillow), which also survives the formats and failures a folder of arbitrary
     files holds (EXIF rotation, CMYK, 16-bit, palette, alpha, animated GIF,
     truncated files, decompression bombs).
   For JPEG both give identical pixels: TensorFlow's decoder is pinned to
   ``INTEGER_ACCURATE``, the IDCT Pillow's libjpeg-turbo uses (checked on all 1,079
   FlickrLogos-27 images and in the tests).
2. :func:`resize_image` to ``[size, size, 3]`` float32 in ``[0, 255]``. Scaling to the
   backbone's range happens inside the model (:mod:`logo_batch.layers`).
"""

from __future__ import annotations

import io
import os
from pathlib import Path

import numpy as np
import tensorflow as tf
from PIL import Image, ImageFile, ImageOps, UnidentifiedImageError

# 50 megapixels: far above any photo the classifier needs, far below a bomb.
DEFAULT_MAX_PIXELS = 50_000_000
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


def decode_image_tf(image_bytes: tf.Tensor) -> tf.Tensor:
    """Decodes encoded image bytes to ``uint8 [H, W, 3]`` inside a TF graph."""
    image = tf.cond(
        tf.io.is_jpeg(image_bytes),
        lambda: tf.io.decode_jpeg(image_bytes, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(image_bytes, channels=3, expand_animations=False),
    )
    image.set_shape([None, None, 3])
    return image


def resize_image(image: tf.Tensor | np.ndarray, image_size: int) -> tf.Tensor:
    """Resizes a ``uint8 [H, W, 3]`` image to ``float32 [size, size, 3]`` in [0, 255]."""
    image = tf.convert_to_tensor(image)
    resized = tf.image.resize(
        tf.cast(image, tf.float32), (image_size, image_size), method="bilinear", antialias=True
    )
    return tf.clip_by_value(resized, 0.0, 255.0)


def _to_rgb(image: Image.Image) -> Image.Image:
    """Converts any Pillow mode to RGB: 16-bit scaled, alpha composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        array = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") or array.max() > 255 else 255.0
        array = np.clip(np.rint(array * (255.0 / peak)), 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
    elif image.mode == "F":
        array = np.clip(np.rint(np.asarray(image)), 0, 255).astype(np.uint8)
        image = Image.fromarray(array, mode="L")
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
) -> np.ndarray:
    """Decodes an image file (path or bytes) to ``uint8 [H, W, 3]`` RGB.

    Applies the EXIF orientation, takes the first frame of animations, and refuses
    images over ``max_pixels`` before decoding them. Raises :class:`ImageDecodeError`
    naming the file (``name``, else the path) and the problem.
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
    image = load_image(source, name=name, max_pixels=max_pixels)
    return resize_image(image, image_size).numpy()
