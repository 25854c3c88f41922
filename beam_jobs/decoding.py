"""Batches of files to model inputs (:class:`DecodeImageBatches`): each file read and
decoded as ``logo-batch predict`` does it, a bad file an error of its own."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import apache_beam as beam
import numpy as np
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs.batch_coder import BatchCoder
from beam_jobs.file_facts import FileEntry, with_checksum
from beam_jobs.summary import METRICS_NAMESPACE
from beam_jobs.transforms import check_mode
from logo_batch.inference.file_access import DEFAULT_MAX_BYTES, ImageDecodeError, check_file_size
from logo_batch.inference.predict import SINGLE, WHOLE
from logo_batch.inference.preprocessing import DEFAULT_MAX_PIXELS, preprocess_image_file
from logo_batch.inference.whole_photo import DEFAULT_GRID, Grid, WindowStack, load_photo_stack
from logo_batch.result_csv import unescape_path


@dataclass
class DecodedBatch:
    """Model inputs of the files of a batch that decoded, and the errors of the rest,
    each keyed by the file's :class:`FileEntry` (its path and the facts its row records).

    An input is a ``float32 [S, S, 3]`` array in single mode, a
    :class:`~logo_batch.inference.whole_photo.WindowStack` (``[W, S, S, 3]`` and the boxes) in
    whole mode.
    """

    inputs: list[tuple[FileEntry, np.ndarray | WindowStack]] = field(default_factory=list)
    errors: list[tuple[FileEntry, str]] = field(default_factory=list)


beam.coders.registry.register_coder(DecodedBatch, BatchCoder)


@contextlib.contextmanager
def _open_remote(path: str) -> Iterator[BinaryIO]:
    """A file on a Beam file system (gs://, s3://, ...), open to read (seekable)."""
    try:
        handle = FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED)
    except Exception as error:  # noqa: BLE001  (every filesystem raises its own kind)
        details = getattr(error, "exception_details", None) or {}  # BeamIOError
        cause = next(iter(details.values()), None) or error
        reason = getattr(cause, "strerror", None) or str(cause)
        raise ImageDecodeError(path, f"cannot read file: {reason}") from error
    with handle:
        yield handle


def decode_file(
    path: str,
    image_size: int,
    max_pixels: int,
    mode: str = SINGLE,
    grid: Grid = DEFAULT_GRID,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> np.ndarray | WindowStack:
    """One file (an escaped CSV path) to a model input (single mode) or its window
    stack (whole mode); raises :class:`ImageDecodeError` with the reason.

    The file is opened, not read whole: Pillow reads its header from it
    (:func:`~logo_batch.inference.preprocessing.load_photo`), local paths directly (any
    bytes in the name), others through Beam's filesystems.
    """
    raw = unescape_path(path)
    remote = FileSystems.get_scheme(raw) is not None
    with _open_remote(raw) if remote else contextlib.nullcontext(raw) as source:
        limits = {"name": path, "max_pixels": max_pixels, "max_bytes": max_bytes}
        if mode == WHOLE:
            return load_photo_stack(source, image_size, grid, **limits)
        return preprocess_image_file(source, image_size, **limits)


class _DecodeBatchFn(beam.DoFn):
    def __init__(
        self,
        image_size: int,
        max_pixels: int,
        mode: str,
        grid: Grid,
        max_bytes: int,
        checksum: bool = False,
    ):
        self._checksum = checksum
        self._image_size = image_size
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        self._mode = mode
        self._grid = tuple(grid)
        self._read = Metrics.counter(METRICS_NAMESPACE, "images_read")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed_to_decode")

    def process(self, entries: tuple[tuple, ...]):
        # Each entry a FileEntry's fields, as GroupIntoBatches unpacks them: Beam checks
        # this hint against the producer's output type (strictly from 2.78 on).
        batch = DecodedBatch()
        for fields in entries:
            entry = FileEntry(*fields)
            if entry.error:
                batch.errors.append((entry, entry.error))
                continue
            try:
                check_file_size(entry.path, entry.size, self._max_bytes)  # from the listing
                if self._checksum:  # the row records the file's hash
                    entry = with_checksum(entry)
                decoded = decode_file(
                    entry.path,
                    self._image_size,
                    self._max_pixels,
                    self._mode,
                    self._grid,
                    self._max_bytes,
                )
                batch.inputs.append((entry, decoded))
                self._read.inc()
            except ImageDecodeError as error:
                batch.errors.append((entry, error.reason))
                self._failed.inc()
        yield batch


class DecodeImageBatches(beam.PTransform):
    """Batches of entries (:class:`FileEntry`, or a tuple of its first fields) to
    :class:`DecodedBatch`; a bad file never fails its batch, and an entry that already
    has an error is passed on as one.

    A file over ``max_bytes`` (its size as listed) is an error, never read.
    ``checksum``: each file's SHA-256 is taken first (its row records it).
    ``mode``: ``single`` (one input per file) or ``whole`` (each file decoded once
    into its window stack over ``grid``: B photos x 14 windows of S x S float32 per
    batch, about B x 8 MB at 224 px).
    """

    def __init__(
        self,
        image_size: int,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        *,
        mode: str = SINGLE,
        grid: Grid = DEFAULT_GRID,
        max_bytes: int = DEFAULT_MAX_BYTES,
        checksum: bool = False,
    ):
        super().__init__()
        self._checksum = checksum
        self._image_size = image_size
        self._max_pixels = max_pixels
        self._max_bytes = max_bytes
        self._mode = check_mode(mode)
        self._grid = tuple(grid)

    def expand(self, batches):
        return batches | "Decode" >> beam.ParDo(
            _DecodeBatchFn(
                self._image_size,
                self._max_pixels,
                self._mode,
                self._grid,
                self._max_bytes,
                self._checksum,
            )
        ).with_output_types(DecodedBatch)
