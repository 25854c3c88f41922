"""Sequential gunzip of a stream in large chunks, every member's CRC and length checked.

:class:`gzip.GzipFile` decompresses 8 KiB of input per call, which costs as much Python
overhead as inflating; this reader hands zlib 256 KiB at a time. zlib parses each gzip
member's header and checks its trailer (CRC-32 and length), so a corrupt stream raises
``zlib.error`` and a cut one ``EOFError``, like :class:`gzip.GzipFile`. Members may be
concatenated and followed by zero padding, as :class:`gzip.GzipFile` allows.
"""

from __future__ import annotations

import io
import zlib
from typing import BinaryIO

CHUNK_SIZE = 1 << 18  # 256 KiB: few Python calls, still cache-sized copies
_GZIP = 16 + zlib.MAX_WBITS  # zlib's gzip wrapper: parses the header, checks the trailer


class GunzipReader(io.RawIOBase):
    """The decompressed bytes of the gzip stream ``fileobj`` (read sequentially)."""

    def __init__(self, fileobj: BinaryIO, chunk_size: int = CHUNK_SIZE):
        self._fileobj = fileobj
        self._chunk_size = chunk_size
        self._zlib = zlib.decompressobj(_GZIP)
        self._input = b""
        self._in_member = False  # inside a member, its trailer not yet checked

    def readable(self) -> bool:
        return True

    def _next_member(self) -> bool:
        """After a member's trailer: starts the next member if data follows."""
        rest = (self._zlib.unused_data + self._input).lstrip(b"\0")
        while not rest:
            chunk = self._fileobj.read(self._chunk_size)
            if not chunk:
                return False
            rest = chunk.lstrip(b"\0")
        self._zlib = zlib.decompressobj(_GZIP)
        self._input = rest
        return True

    def readinto(self, buffer) -> int:
        with memoryview(buffer) as view, view.cast("B") as out:
            while True:
                if self._zlib.eof:
                    self._in_member = False
                    if not self._next_member():
                        return 0
                if not self._input:
                    self._input = self._fileobj.read(self._chunk_size)
                    if not self._input:
                        if self._in_member:
                            raise EOFError(
                                "Compressed file ended before the end-of-stream marker was reached"
                            )
                        return 0
                self._in_member = True
                data = self._zlib.decompress(self._input, len(out))
                self._input = self._zlib.unconsumed_tail
                if data:
                    out[: len(data)] = data
                    return len(data)


def open_gunzip(fileobj: BinaryIO, chunk_size: int = CHUNK_SIZE) -> io.BufferedReader:
    """A buffered reader of the decompressed ``fileobj``, read ``chunk_size`` at a time.

    A read error of ``fileobj`` loses the chunk being read: where the position of an
    error matters (a stream inside a stream), pass a small ``chunk_size``.
    """
    return io.BufferedReader(GunzipReader(fileobj, chunk_size), CHUNK_SIZE)
