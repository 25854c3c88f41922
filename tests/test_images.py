"""Decoding the image files a real folder holds: load_image's pixels and its errors."""

from __future__ import annotations

import os

import numpy as np
import pytest
from image_files import (
    BLUE,
    PROC_SELF_MEM,
    RED,
    WHITE,
    animated_gif,
    bomb_png_header,
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    gray_png,
    halves,
    palette_png,
    permissions_enforced,
    png16,
    rgba_png,
    truncated_jpeg,
)

from logo_batch.inference.file_access import ImageDecodeError
from logo_batch.inference.preprocessing import load_image, preprocess_image_file

# ----------------------------------------------------------------------- decode cases


def test_alpha_is_composited_on_white():
    pixels = load_image(rgba_png())
    assert pixels.shape == (3, 4, 3) and pixels.dtype == np.uint8
    assert (pixels[0] == WHITE).all()
    assert (pixels[1] == RED).all()
    np.testing.assert_allclose(pixels[2, 0], (255, 127, 127), atol=1)


def test_grayscale_becomes_three_equal_channels():
    pixels = load_image(gray_png(100))
    assert pixels.shape == (4, 5, 3)
    assert (pixels == 100).all()


def test_palette_colours_are_looked_up():
    pixels = load_image(palette_png())
    assert tuple(pixels[0, 0]) == RED
    assert tuple(pixels[0, 1]) == BLUE
    assert tuple(pixels[1, 0]) == BLUE


def test_16_bit_png_is_scaled_to_8_bits():
    pixels = load_image(png16())
    assert pixels[0, :, 0].tolist() == [0, 128, 255]
    assert (pixels[..., 0] == pixels[..., 2]).all()


def test_cmyk_jpeg_becomes_rgb():
    pixels = load_image(cmyk_jpeg())
    # Pure cyan ink: no red, full green and blue.
    np.testing.assert_allclose(pixels.reshape(-1, 3).mean(axis=0), (0, 255, 255), atol=6)


def test_animated_gif_gives_its_first_frame():
    pixels = load_image(animated_gif())
    assert pixels.shape == (8, 8, 3)
    assert (pixels == RED).all()


def test_exif_orientation_is_applied():
    pixels = load_image(exif_rotated_jpeg()).astype(int)
    # 40 wide x 20 high on disk; rotated 90 degrees clockwise: 20 wide x 40 high, with
    # the stored left (red) half on top.
    assert pixels.shape == (40, 20, 3)
    np.testing.assert_allclose(pixels[5, 10], RED, atol=12)
    np.testing.assert_allclose(pixels[34, 10], BLUE, atol=12)


@pytest.mark.parametrize("fmt", ["BMP", "WEBP"])
def test_bmp_and_webp(fmt):
    kwargs = {"lossless": True} if fmt == "WEBP" else {}
    pixels = load_image(encode(halves(10, 6), fmt, **kwargs))
    assert tuple(pixels[0, 0]) == RED and tuple(pixels[5, 9]) == BLUE


def test_path_and_bytes_decode_identically(tmp_path):
    path = tmp_path / "rotated.jpg"
    path.write_bytes(exif_rotated_jpeg())
    np.testing.assert_array_equal(load_image(path), load_image(path.read_bytes()))
    model_input = preprocess_image_file(path, 16)
    assert model_input.shape == (16, 16, 3) and model_input.dtype == np.float32
    assert 0.0 <= model_input.min() and model_input.max() <= 255.0


# ------------------------------------------------------------------------ bad files


def _reason(source, **kwargs) -> str:
    with pytest.raises(ImageDecodeError) as caught:
        load_image(source, **kwargs)
    return caught.value.reason


def test_truncated_jpeg_is_refused():
    assert "corrupt or truncated" in _reason(truncated_jpeg())


def test_zero_byte_file(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(ImageDecodeError) as caught:
        load_image(path)
    assert caught.value.reason == "empty file (0 bytes)"
    assert caught.value.source == str(path)


def test_text_with_an_image_extension():
    assert _reason(b"this is not a picture\n", name="notes.png") == "not a recognised image format"


def test_huge_pixel_count_is_refused_before_decoding():
    # 10 gigapixels (30 GB decoded) would exhaust memory if decoding started; Pillow
    # itself refuses it in Image.open, which load_image must turn into its own error.
    assert "refused before decoding" in _reason(bomb_png_header())
    # Under Pillow's own limit but over max_pixels: refused by load_image's check.
    reason = _reason(bomb_png_header(8_000, 8_000))
    assert "64,000,000 pixels" in reason and "refused before decoding" in reason
    assert "refused before decoding" in _reason(gray_png(), max_pixels=10)


def test_missing_file_names_the_problem(tmp_path):
    assert "No such file" in _reason(tmp_path / "gone.png")


@pytest.mark.skipif(not os.path.exists(PROC_SELF_MEM), reason="needs Linux /proc")
def test_file_that_cannot_be_read(tmp_path):
    link = tmp_path / "unreadable.jpg"
    link.symlink_to(PROC_SELF_MEM)
    assert _reason(link) == "cannot read file: Input/output error"


def test_file_without_read_permission(tmp_path):
    path = tmp_path / "locked.png"
    path.write_bytes(gray_png())
    path.chmod(0)
    if not permissions_enforced(path):
        pytest.skip("running as root: file permissions are not enforced")
    assert _reason(path) == "cannot read file: Permission denied"


@pytest.mark.parametrize(
    "shape", [(375, 500), (224, 224), (500, 333), (40, 60), (13, 200), (1000, 700), (1, 5)]
)
@pytest.mark.parametrize("size", [224, 128])
def test_the_resize_without_tensorflow_gives_tensorflows_pixels(shape, size):
    """predict and the Beam workers resize with Pillow (no TensorFlow import); training
    resizes in tf.data: down- and upscaled, the model sees the same pixels."""
    from logo_batch.inference.preprocessing import resize_array, resize_image

    image = np.random.default_rng(sum(shape) + size).integers(0, 256, (*shape, 3), np.uint8)
    ours, theirs = resize_array(image, size), resize_image(image, size).numpy()
    assert ours.dtype == np.float32 and ours.shape == (size, size, 3)
    np.testing.assert_allclose(ours, theirs, atol=0.01)


def test_the_resize_refuses_what_is_not_an_rgb_byte_image():
    from logo_batch.inference.preprocessing import resize_array

    image = np.zeros((10, 12, 3), np.uint8)
    assert resize_array(image[:, ::2], 8).shape == (8, 8, 3)  # a strided window is fine
    for bad in (image.astype(np.float32), image[..., 0], np.zeros((10, 12, 4), np.uint8)):
        with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
            resize_array(bad, 8)


def test_a_window_of_the_float_bands_is_the_resize_of_the_cropped_array():
    """Whole-photo windows are cut from the photo made float once (float_bands): the
    same pixels, bit for bit, as cropping the array and resizing the crop."""
    from logo_batch.inference.preprocessing import float_bands, resize_array, resize_bands

    rng = np.random.default_rng(11)
    image = rng.integers(0, 256, (97, 131, 3), np.uint8)
    bands = float_bands(image)
    boxes = [(0, 0, 131, 97), (0, 0, 1, 1), (130, 96, 131, 97), (5, 60, 80, 97), (17, 3, 29, 90)]
    for x0, y0, x1, y1 in boxes:
        for size in (24, 7):
            expected = resize_array(image[y0:y1, x0:x1], size)
            np.testing.assert_array_equal(resize_bands(bands, size, box=(x0, y0, x1, y1)), expected)
    out = np.full((5, 24, 24, 3), -1.0, np.float32)
    assert resize_bands(bands, 24, out=out[2]) is not None
    np.testing.assert_array_equal(out[2], resize_array(image, 24))
    assert (out[[0, 1, 3, 4]] == -1.0).all()  # only the given slot written


def test_float_bands_refuse_what_is_not_rgb():
    from PIL import Image

    from logo_batch.inference.preprocessing import float_bands

    with pytest.raises(ValueError, match="expected an RGB image, not mode L"):
        float_bands(Image.new("L", (4, 4)))
    with pytest.raises(ValueError, match=r"uint8 \[H, W, 3\]"):
        float_bands(np.zeros((4, 4), np.uint8))


@pytest.mark.parametrize(
    "make", ["rgba_png", "gray_png", "palette_png", "png16", "cmyk_jpeg", "exif_rotated_jpeg"]
)
def test_a_file_input_is_the_resize_of_its_decoded_array(make, tmp_path):
    """preprocess_image_file goes from the decoded image to its float bands without an
    array between: the same input as resizing load_image's array, in every mode."""
    import image_files

    from logo_batch.inference.preprocessing import load_image, preprocess_image_file, resize_array

    path = tmp_path / f"{make}.img"
    path.write_bytes(getattr(image_files, make)())
    for size in (8, 24):
        expected = resize_array(load_image(path, resize_to=size), size)
        np.testing.assert_array_equal(preprocess_image_file(path, size), expected)
