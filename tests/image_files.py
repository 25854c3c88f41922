"""Image files for tests: builders of good and bad image bytes, shared by test modules.

Not a test module itself (pytest collects nothing here); `test_images` and the Beam
job tests import it.
"""

from __future__ import annotations

import io
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

RED, BLUE, WHITE = (255, 0, 0), (0, 0, 255), (255, 255, 255)


def encode(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def halves(width: int, height: int, left=RED, right=BLUE) -> Image.Image:
    """An RGB picture, left half ``left``, right half ``right``."""
    array = np.zeros((height, width, 3), np.uint8)
    array[:, : width // 2] = left
    array[:, width // 2 :] = right
    return Image.fromarray(array)


def rgba_png() -> bytes:
    """Row 0: transparent; row 1: opaque red; row 2: half-transparent red."""
    array = np.zeros((3, 4, 4), np.uint8)
    array[1] = (255, 0, 0, 255)
    array[2] = (255, 0, 0, 128)
    return encode(Image.fromarray(array), "PNG")


def gray_png(value: int = 100) -> bytes:
    return encode(Image.new("L", (5, 4), value), "PNG")


def palette_png() -> bytes:
    image = Image.new("P", (4, 2))
    image.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    image.putpixel((0, 0), 0)
    image.putpixel((1, 0), 1)
    image.putpixel((0, 1), 1)
    return encode(image, "PNG")


def png16() -> bytes:
    """A 16-bit grey PNG (a uint16 array is Pillow mode I;16): 0, mid-grey, white."""
    array = np.array([[0, 32896, 65535]], dtype=np.uint16)
    return encode(Image.fromarray(array), "PNG")


def cmyk_jpeg() -> bytes:
    return encode(Image.new("CMYK", (16, 16), (255, 0, 0, 0)), "JPEG", quality=95)


def animated_gif() -> bytes:
    frames = [Image.new("RGB", (8, 8), RED), Image.new("RGB", (8, 8), BLUE)]
    return encode(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100)


def exif_rotated_jpeg() -> bytes:
    """Stored 40x20 (left red, right blue), EXIF orientation 6 (display rotated 90 CW)."""
    exif = Image.Exif()
    exif[0x0112] = 6
    return encode(halves(40, 20), "JPEG", quality=95, exif=exif.tobytes())


def truncated_jpeg() -> bytes:
    """A JPEG cut in the middle of its scan data (the header still reads)."""
    noise = np.random.default_rng(0).integers(0, 256, (128, 128, 3), dtype=np.uint8)
    data = encode(Image.fromarray(noise), "JPEG", quality=90)
    return data[: len(data) * 2 // 3]


def bomb_png_header(width: int = 100_000, height: int = 100_000) -> bytes:
    """A valid PNG header claiming a huge size (10 gigapixels), a few bytes long."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\0" * 16))
        + chunk(b"IEND", b"")
    )


def permissions_enforced(path: Path) -> bool:
    """False when running as root (or on a filesystem that ignores mode bits)."""
    try:
        path.read_bytes()
    except PermissionError:
        return True
    return False


PROC_SELF_MEM = "/proc/self/mem"  # listed with size 0; reading offset 0 fails with EIO


def noise_jpeg(seed: int) -> bytes:
    """A small JPEG of two random colours (a distinct picture per seed)."""
    rng = np.random.default_rng(seed)
    return encode(
        halves(48, 32, tuple(rng.integers(0, 256, 3)), tuple(rng.integers(0, 256, 3))), "JPEG"
    )
