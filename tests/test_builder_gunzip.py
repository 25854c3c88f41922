"""The builder's gzip reader (tfds_flickr27.gunzip) against Python's gzip module.

Same bytes out for every stream :mod:`gzip` reads (several members, zero padding, empty
members), and an error for every damaged stream it rejects: cut anywhere, a corrupt CRC
or length in the trailer, garbage after a member.
"""

from __future__ import annotations

import gzip
import io
import struct
import zlib

import numpy as np
import pytest

from tfds_flickr27.gunzip import GunzipReader, open_gunzip

PAYLOAD = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
TEXT = b"flickr_logos_27 " * 40_000  # compresses well: one chunk in, many out
STREAM = gzip.compress(PAYLOAD, mtime=0)


def _read(data: bytes, chunk_size: int, read_size: int = 10_240) -> bytes:
    reader = open_gunzip(io.BytesIO(data), chunk_size)
    parts = []
    while part := reader.read(read_size):
        parts.append(part)
    return b"".join(parts)


@pytest.mark.parametrize("chunk_size", [1, 7, 16_384, 1 << 18])
@pytest.mark.parametrize(
    "data",
    [
        STREAM,
        gzip.compress(TEXT, mtime=0),
        gzip.compress(b"", mtime=0),
        gzip.compress(PAYLOAD[:1000]) + gzip.compress(TEXT) + gzip.compress(b""),
        STREAM + bytes(1000),  # zero padding after the member
        b"",
    ],
    ids=["random", "text", "empty-member", "three-members", "zero-padded", "no-data"],
)
def test_reads_what_gzip_reads(data, chunk_size):
    assert _read(data, chunk_size) == gzip.decompress(data)


def test_large_and_small_reads_give_the_same_bytes():
    whole = GunzipReader(io.BytesIO(STREAM)).readall()
    assert whole == PAYLOAD
    assert _read(STREAM, 1 << 18, read_size=1)[:5000] == PAYLOAD[:5000]


@pytest.mark.parametrize("cut", [1, 10, len(STREAM) // 2, len(STREAM) - 8, len(STREAM) - 1])
def test_a_cut_stream_raises_eof(cut):
    with pytest.raises(EOFError):
        _read(STREAM[:cut], 16_384)
    with pytest.raises((EOFError, gzip.BadGzipFile)):  # gzip rejects the same bytes
        gzip.decompress(STREAM[:cut])


def _trailer(crc_delta: int = 0, size_delta: int = 0) -> bytes:
    crc, size = struct.unpack("<II", STREAM[-8:])
    return STREAM[:-8] + struct.pack("<II", (crc + crc_delta) % 2**32, size + size_delta)


@pytest.mark.parametrize(
    "damaged",
    [_trailer(crc_delta=1), _trailer(size_delta=1), STREAM + b"garbage after the member"],
    ids=["crc", "length", "trailing-garbage"],
)
def test_a_corrupt_stream_raises(damaged):
    with pytest.raises((EOFError, gzip.BadGzipFile)):
        gzip.decompress(damaged)
    with pytest.raises((zlib.error, EOFError)):
        _read(damaged, 16_384)
