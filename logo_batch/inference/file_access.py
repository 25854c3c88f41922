"""Opening an image file without trusting it, before a decoder sees a byte.

A path is opened without blocking (a named pipe, a socket or a device is refused, not
read), its size taken from its stat and checked against ``--max-bytes`` before
reading, an empty file refused; bytes and open files are taken as they are. Every
refusal is an :class:`ImageDecodeError` naming the file and the problem. Decoding is
:mod:`logo_batch.inference.preprocessing`'s.
"""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from typing import BinaryIO

# 256 MiB: far above any photo file (a 50-megapixel JPEG is ~20 MB), and a file is
# refused from its size before it is read.
DEFAULT_MAX_BYTES = 256 * 1024 * 1024


ImageSource = str | os.PathLike | bytes | BinaryIO
"""An image file: its path, its bytes, or a seekable binary file open on it."""


class ImageDecodeError(ValueError):
    """An image file that cannot be turned into a model input; names file and reason."""

    def __init__(self, source: str, reason: str):
        super().__init__(f"{source}: {reason}")
        self.source = source
        self.reason = reason


def source_label(source: ImageSource, name: str | None = None) -> str:
    """What errors call ``source``: ``name`` when given, else its path, else a tag."""
    if name:
        return name
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return "<bytes>" if isinstance(source, bytes) else str(getattr(source, "name", "<file>"))


def check_file_size(label: str, size: int | None, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
    """Raises :class:`ImageDecodeError` for a file of ``size`` bytes (None: unknown,
    passes) over ``max_bytes``: checked from the file's size (its stat), before a byte
    of it is read."""
    if size is not None and size > max_bytes:
        raise ImageDecodeError(
            label,
            f"file is {size:,} bytes, over the limit of {max_bytes:,} (--max-bytes): "
            "refused before reading",
        )


def _size_of(handle: BinaryIO) -> int | None:
    """The size of an open file: its stat, else its end (None when it cannot seek)."""
    try:
        return os.fstat(handle.fileno()).st_size
    except (AttributeError, OSError, io.UnsupportedOperation):
        pass
    try:
        here = handle.tell()
        end = handle.seek(0, io.SEEK_END)
        handle.seek(here)
        return end
    except (AttributeError, OSError, io.UnsupportedOperation):
        return None


_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a folder",
}


def not_regular_reason(mode: int) -> str:
    """Why a file of ``st_mode`` ``mode`` is not read ("" for a regular file): reading
    a pipe or a device would block or never end."""
    if stat.S_ISREG(mode):
        return ""
    return f"not a regular file ({_FILE_KINDS.get(stat.S_IFMT(mode), 'a special file')})"


@contextlib.contextmanager
def _opened(source: ImageSource, label: str) -> Iterator[BinaryIO]:
    """``source`` as a seekable binary file: a path opened (a pipe or a device is
    refused without blocking), bytes wrapped, a file as it is."""
    if isinstance(source, bytes):
        yield io.BytesIO(source)
        return
    if not isinstance(source, (str, os.PathLike)):
        yield source
        return
    try:
        descriptor = os.open(source, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as error:
        raise ImageDecodeError(label, f"cannot read file: {error.strerror or error}") from error
    reason = not_regular_reason(os.fstat(descriptor).st_mode)
    if reason:  # before open(): a folder's descriptor cannot become a file object
        os.close(descriptor)
        raise ImageDecodeError(label, reason)
    with open(descriptor, "rb") as handle:
        yield handle


@contextlib.contextmanager
def open_image_file(source: ImageSource, label: str, max_bytes: int) -> Iterator[BinaryIO]:
    """``source`` open at its start, once its size passed ``max_bytes``
    (:func:`check_file_size`) and it proved not empty; raises :class:`ImageDecodeError`."""
    with _opened(source, label) as handle:
        size = _size_of(handle)
        check_file_size(label, size, max_bytes)
        try:
            if not size and not handle.read(1):  # a stat of 0 may be a /proc file
                raise ImageDecodeError(label, "empty file (0 bytes)")
            handle.seek(0)
        except OSError as error:  # EIO, a vanished mount
            raise ImageDecodeError(label, f"cannot read file: {error.strerror or error}") from error
        yield handle
