"""The build's fast decode check (tfds_flickr27.jpeg.check_image) against the full one.

``check_image`` (Pillow's header, TensorFlow at 1/8 scale) must accept and reject exactly
what ``full_decode_check`` (Pillow and TensorFlow both decoding in full) does, with the
same reason, on intact JPEGs of every kind the decoders meet and on damaged ones; the
batched ``check_images`` (what the build runs) must give each image check_image's answer. The
assertions compare the two checks in this environment, never a decoder's verdict on a
particular byte pattern, except where the builder's policy depends on it.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
from image_files import cmyk_jpeg, encode, exif_rotated_jpeg, gray_png, truncated_jpeg
from PIL import Image

from tfds_flickr27 import jpeg
from tfds_flickr27.jpeg import check_image, check_images, full_decode_check


def _noise(width: int, height: int, **save) -> bytes:
    pixels = np.random.default_rng(width * height).integers(0, 256, (height, width, 3))
    return encode(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=90, **save)


NOISE = _noise(123, 77)  # sides not multiples of 8: the 1/8 scale rounds up
SOS = NOISE.index(b"\xff\xda")  # start of scan: the entropy-coded data follows


def _zero(data: bytes, start: int, end: int) -> bytes:
    return data[:start] + bytes(end - start) + data[end:]


def _flip(data: bytes, *positions: int) -> bytes:
    out = bytearray(data)
    for position in positions:
        out[position] ^= 0x5A
    return bytes(out)


SCAN = len(NOISE) - SOS
INTACT = {
    "baseline": NOISE,
    "progressive": _noise(64, 40, progressive=True),
    "subsampled 4:2:0": _noise(90, 50, subsampling=2),
    "grayscale": encode(Image.fromarray(np.arange(600, dtype=np.uint8).reshape(20, 30)), "JPEG"),
    "cmyk": cmyk_jpeg(),
    "exif rotated": exif_rotated_jpeg(),
    "one pixel": encode(Image.new("RGB", (1, 1), (9, 9, 9)), "JPEG"),
}
DAMAGED = {
    "garbage": b"not an image " * 40,
    "png": gray_png(),
    "empty": b"",
    "header only": NOISE[:SOS],
    "cut in the header": NOISE[: SOS // 2],
    "cut in the scan": NOISE[: SOS + SCAN // 2],
    "cut before the end marker": NOISE[:-2],
    "truncated (tests.image_files)": truncated_jpeg(),
    "zeroed tail": NOISE[: SOS + SCAN // 2].ljust(len(NOISE), b"\0"),
    "0xff tail": NOISE[: SOS + SCAN // 2].ljust(len(NOISE), b"\xff"),
    "zeroed middle": _zero(NOISE, SOS + SCAN // 3, SOS + SCAN // 2),
    "scan bytes flipped": _flip(NOISE, SOS + SCAN // 4, SOS + SCAN // 2, SOS + 3 * SCAN // 4),
    "header bytes flipped": _flip(NOISE, 20, 40, SOS - 30),
    "scan bytes deleted": NOISE[: SOS + SCAN // 3] + NOISE[SOS + SCAN // 2 :],
    "end marker only": b"\xff\xd8\xff\xd9",
}


def _outcome(check, data: bytes) -> tuple[str, object]:
    try:
        return "ok", check(data)
    except ValueError as error:
        return "rejected", str(error)


@pytest.mark.parametrize("name", list(INTACT))
def test_intact_jpegs_pass_both_checks_with_the_same_size(name):
    data = INTACT[name]
    with Image.open(io.BytesIO(data)) as image:
        size = image.size
    assert check_image(data) == full_decode_check(data) == size


@pytest.mark.parametrize("name", list(DAMAGED))
def test_damaged_jpegs_get_the_full_checks_verdict_and_reason(name):
    data = DAMAGED[name]
    assert _outcome(check_image, data) == _outcome(full_decode_check, data)


def test_what_the_builder_relies_on_is_rejected():
    # The cases tests/test_builder_hostile_input.py builds archives with.
    for name, reason in [
        ("garbage", "cannot identify"),
        ("cut in the scan", "truncated"),
        ("zeroed tail", "decode"),
    ]:
        outcome, message = _outcome(check_image, DAMAGED[name])
        assert outcome == "rejected" and reason in message.lower(), (name, message)


def _answer(result: tuple[int, int] | ValueError) -> tuple[str, object]:
    return ("rejected", str(result)) if isinstance(result, ValueError) else ("ok", result)


@pytest.mark.parametrize("name", list(DAMAGED))
def test_a_batch_with_a_damaged_jpeg_gets_each_images_own_answer(name):
    # The damaged image alone, and among intact ones: the batch's one TensorFlow call
    # never accepts what check_image rejects, nor loses an intact image's answer.
    for batch in ([DAMAGED[name]], [*INTACT.values(), DAMAGED[name], NOISE]):
        assert [_answer(r) for r in check_images(batch)] == [
            _outcome(check_image, data) for data in batch
        ]


def test_an_intact_batch_is_answered_by_the_batch_call(monkeypatch):
    def not_expected(data):
        raise AssertionError("check_image ran: the batch call did not accept an intact image")

    intact = list(INTACT.values())
    expected = [check_image(data) for data in intact]
    monkeypatch.setattr(jpeg, "check_image", not_expected)
    assert check_images(intact) == expected
    assert check_images([]) == []
