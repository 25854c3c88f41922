"""JPEGs decoded downscaled in the DCT domain: the ratio, and the same pixels in
TensorFlow (training, evaluation) and Pillow (predict, Beam) at every ratio."""

from __future__ import annotations

import io

import numpy as np
import pytest
import tensorflow as tf
from image_files import encode, exif_rotated_jpeg
from PIL import Image

from logo_batch.inference.preprocessing import (
    DCT_RATIOS,
    dct_ratio,
    decode_and_resize_tf,
    decode_image_tf,
    load_image,
    preprocess_image_file,
)

SIZE = 16
# Grey levels: Pillow's and TensorFlow's antialiased bilinear resizes (the same filter)
# differ by float rounding only (0.004 measured).
RESIZE_TOLERANCE = 0.01


def photo(height: int, width: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A photo-like picture: smooth gradients plus noise (structure at every scale)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    channels = [
        127 + 100 * np.sin(x / (5 + 7 * c) + y / (9 + 3 * c) + c) for c in range(3)
    ]  # fmt: skip
    pixels = np.stack(channels, axis=-1) + rng.normal(0, 20, (height, width, 3))
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    return image.convert(mode)


def mpo(height: int, width: int) -> bytes:
    """A two-frame MPO (a camera's multi-picture JPEG); its first frame is what counts."""
    buffer = io.BytesIO()
    photo(height, width, 1).save(
        buffer, "MPO", save_all=True, append_images=[photo(height, width, 2)]
    )
    return buffer.getvalue()


# Encodings a folder of real photos holds: chroma subsampling 4:4:4, 4:2:2, 4:2:0,
# progressive, grayscale, odd sizes, and camera MPO files.
VARIANTS = {
    "444": lambda h, w: encode(photo(h, w), "JPEG", quality=90, subsampling=0),
    "422": lambda h, w: encode(photo(h, w), "JPEG", quality=90, subsampling=1),
    "420": lambda h, w: encode(photo(h, w), "JPEG", quality=75, subsampling=2),
    "progressive": lambda h, w: encode(photo(h, w), "JPEG", quality=85, progressive=True),
    "grayscale": lambda h, w: encode(photo(h, w, mode="L"), "JPEG", quality=85),
    "mpo": mpo,
}
# (height, width) giving each ratio at SIZE = 16, odd sides included.
SHAPES = {1: (31, 40), 2: (33, 47), 4: (77, 64), 8: (129, 203)}


def test_dct_ratio_keeps_both_sides_at_least_the_input_size():
    assert [dct_ratio(h, w, SIZE) for h, w in SHAPES.values()] == list(SHAPES)
    assert dct_ratio(375, 500, 224) == 1  # a FlickrLogos-27 photo at the default size
    assert dct_ratio(375, 500, 128) == 2
    assert dct_ratio(3000, 4000, 224) == 8  # a phone photo: never more than 8
    assert dct_ratio(10, 10, 224) == 1  # smaller than the input: upscaled, not scaled
    for height in range(1, 200, 7):
        for width in range(1, 200, 11):
            ratio = dct_ratio(height, width, SIZE)
            assert ratio in DCT_RATIOS
            assert ratio == 1 or -(-min(height, width) // ratio) >= SIZE
            assert ratio == 8 or 2 * ratio * SIZE > min(height, width)  # the largest


@pytest.mark.parametrize("variant", sorted(VARIANTS))
@pytest.mark.parametrize("ratio", sorted(SHAPES))
def test_tensorflow_and_pillow_decode_the_same_scaled_pixels(variant, ratio):
    height, width = SHAPES[ratio]
    data = VARIANTS[variant](height, width)
    scaled = (-(-height // ratio), -(-width // ratio))
    from_pillow = load_image(data, resize_to=SIZE)
    from_tf = decode_image_tf(tf.constant(data), resize_to=SIZE).numpy()
    assert from_pillow.shape == from_tf.shape == (*scaled, 3)
    np.testing.assert_array_equal(from_pillow, from_tf)
    # The model inputs: what predict and Beam feed is what training feeds (the same
    # decode; the resize without TensorFlow gives its pixels to RESIZE_TOLERANCE).
    np.testing.assert_allclose(
        preprocess_image_file(data, SIZE),
        decode_and_resize_tf(tf.constant(data), SIZE).numpy(),
        atol=RESIZE_TOLERANCE,
    )


def test_model_input_runs_in_a_graph():
    data = VARIANTS["420"](*SHAPES[4])
    ds = tf.data.Dataset.from_tensors(tf.constant(data)).map(
        lambda jpeg: decode_and_resize_tf(jpeg, SIZE)
    )
    (graph_input,) = list(ds.as_numpy_iterator())
    assert graph_input.shape == (SIZE, SIZE, 3) and graph_input.dtype == np.float32
    np.testing.assert_allclose(
        graph_input, preprocess_image_file(data, SIZE), atol=RESIZE_TOLERANCE
    )


def test_without_a_target_size_the_photo_is_decoded_full_size():
    """Crops and windows are cut from the full decode (whole-photo mode, background
    windows): no DCT scaling there."""
    height, width = SHAPES[8]
    data = VARIANTS["420"](height, width)
    full = load_image(data)
    assert full.shape == (height, width, 3)
    np.testing.assert_array_equal(full, decode_image_tf(tf.constant(data)).numpy())
    assert load_image(data, resize_to=SIZE).shape == (-(-height // 8), -(-width // 8), 3)


def test_other_formats_are_decoded_full_size():
    height, width = SHAPES[8]
    data = encode(photo(height, width), "PNG")
    np.testing.assert_array_equal(load_image(data, resize_to=SIZE), load_image(data))
    np.testing.assert_allclose(
        preprocess_image_file(data, SIZE),
        decode_and_resize_tf(tf.constant(data), SIZE).numpy(),
        atol=RESIZE_TOLERANCE,
    )


def test_exif_rotation_is_applied_after_scaled_decoding():
    # Stored 40 x 20 (left red, right blue), orientation 6: shown 20 wide x 40 high.
    pixels = load_image(exif_rotated_jpeg(), resize_to=10).astype(int)
    assert pixels.shape == (20, 10, 3)  # decoded at 1/2, then rotated
    np.testing.assert_allclose(pixels[2, 5], (255, 0, 0), atol=16)
    np.testing.assert_allclose(pixels[17, 5], (0, 0, 255), atol=16)
