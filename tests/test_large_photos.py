"""Whole-photo mode on photos larger than its grid needs: a JPEG decoded downscaled in
the DCT domain (``load_photo_stack``), its windows' boxes in the file's pixels."""

from __future__ import annotations

import io

import numpy as np
import pytest
from beam_support import IMAGE_SIZE, make_background_bundle
from PIL import Image

from logo_batch.inference.bundle import load_bundle
from logo_batch.inference.predict import predict_files
from logo_batch.inference.preprocessing import decode_image_tf, load_image, load_photo
from logo_batch.inference.whole_photo import (
    decode_side,
    load_photo_stack,
    photo_stack,
    photo_windows,
)


def smooth_jpeg(height: int, width: int, *, orientation: int | None = None, seed: int = 0):
    """JPEG bytes of a smooth random picture (a camera photo's spectrum, roughly)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (max(2, height // 40), max(2, width // 40), 3), np.uint8)
    picture = Image.fromarray(small).resize((width, height), Image.Resampling.BICUBIC)
    exif = Image.Exif()
    if orientation:
        exif[0x0112] = orientation
    buffer = io.BytesIO()
    picture.save(buffer, format="JPEG", quality=92, exif=exif)
    return buffer.getvalue()


def test_decode_side_keeps_the_smallest_window_at_the_input_size():
    assert decode_side(224) == 560  # 224 / 0.4: the 3 x 3 windows
    assert decode_side(224, ((1, 1.0), (2, 0.5))) == 448
    assert decode_side(IMAGE_SIZE, ((1, 1.0),)) == IMAGE_SIZE
    with pytest.raises(ValueError, match="fraction"):
        decode_side(224, ((2, 0.0),))


def test_a_large_jpeg_is_decoded_downscaled_and_reports_its_own_size():
    data = smooth_jpeg(1200, 1700)
    pixels, size = load_photo(data, min_side=560)
    assert size == (1200, 1700)
    assert pixels.shape == (600, 850, 3)  # 1/2: 1/4 would leave 300 < 560 px
    full, full_size = load_photo(data)
    assert full.shape == (1200, 1700, 3) and full_size == (1200, 1700)
    np.testing.assert_array_equal(load_image(data), full)
    # The pixels evaluation decodes from a dataset record (TensorFlow, same rule).
    np.testing.assert_array_equal(decode_image_tf(data, 560).numpy(), pixels)


@pytest.mark.parametrize("orientation", [6, 8, 3])
def test_the_size_reported_is_the_oriented_photos(orientation):
    data = smooth_jpeg(1200, 1700, orientation=orientation)  # stored 1700 wide
    pixels, size = load_photo(data, min_side=560)
    full = load_image(data)
    assert size == full.shape[:2]
    turned = orientation in (6, 8)
    assert size == ((1700, 1200) if turned else (1200, 1700))
    assert pixels.shape[:2] == ((850, 600) if turned else (600, 850))


def test_windows_of_a_downscaled_decode_are_the_full_decodes_in_the_files_pixels():
    data = smooth_jpeg(1200, 1700, seed=1)
    stack = load_photo_stack(data, 224)
    assert stack.image.shape[:2] == (600, 850)
    boxes = stack.boxes
    full_windows = photo_windows(1200, 1700)
    assert boxes.shape == full_windows.shape
    assert np.abs(boxes - full_windows).max() <= 2  # rounding at half the size
    assert (boxes[:, 2] <= 1700).all() and (boxes[:, 3] <= 1200).all()
    np.testing.assert_array_equal(boxes[0], [0, 0, 1700, 1200])
    # The same picture: each window's input within a few grey levels of the full decode's.
    full = photo_stack(load_image(data), 224)
    difference = np.abs(stack.inputs - full.inputs)
    assert difference.mean() < 1.5, difference.mean()


def test_a_photo_under_the_decode_side_is_decoded_at_full_size():
    data = smooth_jpeg(375, 500, seed=2)  # FlickrLogos-27's photos: at most 500 px
    stack = load_photo_stack(data, 224)
    np.testing.assert_array_equal(stack.image, load_image(data))
    np.testing.assert_array_equal(stack.boxes, photo_windows(375, 500))
    assert stack.boxes is stack.windows


def test_predict_reports_whole_mode_boxes_in_the_files_pixels(tmp_path):
    bundle = load_bundle(make_background_bundle(tmp_path / "bundle"))
    path = tmp_path / "large.jpg"
    path.write_bytes(smooth_jpeg(480, 640, seed=3))  # decode side 60: decoded at 1/8
    assert decode_side(bundle.image_size) * 8 <= 480
    [row] = predict_files(bundle, [str(path)], mode="whole", top_k=3)
    assert not row.error
    windows = {tuple(box) for box in load_photo_stack(path, bundle.image_size).boxes}
    assert row.box is not None and tuple(row.box) in windows
    x0, y0, x1, y1 = row.box
    assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
    assert x1 - x0 >= 0.4 * 640 - 1  # a window of the file, not of the 80-px decode
