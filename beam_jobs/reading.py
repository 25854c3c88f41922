"""Files to model inputs: the first PTransforms of the job (each usable on its own).

    MatchImageFiles -> GroupIntoBatches -> DecodeImageBatches

Why the batching is done by hand, not by RunInference's ``BatchElements``:
``BatchElements`` flushes its last partial batch in ``finish_bundle``, and Beam's
Dask runner (2.77) collects a DoFn's outputs *before* calling ``finish_bundle``
(``runners/dask/transform_evaluator.py::apply_dofn_to_bundle``), so those images
would vanish. Here no DoFn emits anything from ``finish_bundle`` and no DoFn has
tagged outputs (the Dask runner merges them into one collection).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs.inputs import InputSpec, list_local_files, resolve_input
from beam_jobs.paths import escape_path, stable_hash, unescape_path
from beam_jobs.transforms import METRICS_NAMESPACE, check_mode
from logo_batch.predict import (
    SINGLE,
    WHOLE,
)
from logo_batch.preprocessing import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    is_image_path,
    load_image,
    preprocess_image_file,
)
from logo_batch.whole_photo import DEFAULT_GRID, Grid, WindowStack, photo_stack

BATCHES_PER_GROUP = 4


class _ListLocalFn(beam.DoFn):
    def __init__(self):
        self._matched = Metrics.counter(METRICS_NAMESPACE, "files_matched")
        self._errors = Metrics.counter(METRICS_NAMESPACE, "listing_errors")

    def process(self, spec: InputSpec):
        for path, error in list_local_files(spec.root, spec.pattern):
            self._matched.inc()
            if error:
                self._errors.inc()
            yield path, error


class _RemoteMatchFn(beam.DoFn):
    def __init__(self):
        self._matched = Metrics.counter(METRICS_NAMESPACE, "files_matched")

    def process(self, metadata):
        if is_image_path(metadata.path):
            self._matched.inc()
            yield escape_path(metadata.path), ""


class MatchImageFiles(beam.PTransform):
    """Every image file (by extension, any case) of ``--input`` as ``(path, error)``.

    ``path`` is escaped (:func:`escape_path`); ``error`` is "" for a file to read, or
    why the entry cannot be (an unreadable folder, a broken symbolic link): each
    entry becomes one CSV row. Local inputs are listed by :func:`list_local_files`,
    remote ones by Beam's ``fileio.MatchFiles``.
    """

    def __init__(self, spec: InputSpec | str):
        super().__init__()
        self._spec = spec if isinstance(spec, InputSpec) else resolve_input(spec)

    def expand(self, pbegin):
        if self._spec.local:
            return (
                pbegin
                | "Input" >> beam.Create([self._spec])
                | "ListLocalFiles" >> beam.ParDo(_ListLocalFn())
            )
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._spec.pattern)
            | "KeepImages" >> beam.ParDo(_RemoteMatchFn())
        )


def _split_group(keyed_entries, batch_size: int) -> Iterable[tuple[tuple[str, str], ...]]:
    _, entries = keyed_entries
    entries = sorted(entries, key=lambda entry: entry[0])
    for start in range(0, len(entries), batch_size):
        yield tuple(entries[start : start + batch_size])


class GroupIntoBatches(beam.PTransform):
    """``(path, error)`` entries into batches of at most ``batch_size`` with a GroupByKey.

    ``ceil(N / (BATCHES_PER_GROUP * batch_size))`` keys from a stable hash of the
    path, N the matched count (a side input); each group is cut into batches. Groups
    of several batches keep most batches full despite the uneven hash (with one
    batch per key, a third of the batches were partial). Runner-independent:
    nothing is held back for ``finish_bundle``.
    """

    def __init__(self, matched_count, batch_size: int):
        super().__init__()
        self._matched_count = matched_count
        self._batch_size = batch_size

    def expand(self, entries):
        batch_size = self._batch_size

        def add_key(entry: tuple[str, str], count: int):
            num_keys = max(1, math.ceil(count / (BATCHES_PER_GROUP * batch_size)))
            return stable_hash(entry[0]) % num_keys, entry

        return (
            entries
            | "KeyByBatch" >> beam.Map(add_key, count=beam.pvalue.AsSingleton(self._matched_count))
            | "GroupByBatch" >> beam.GroupByKey()
            | "SplitOversize" >> beam.FlatMap(_split_group, batch_size)
        )


@dataclass
class DecodedBatch:
    """Model inputs of the files of a batch that decoded, and the errors of the rest.

    An input is a ``float32 [S, S, 3]`` array in single mode, a
    :class:`~logo_batch.whole_photo.WindowStack` (``[W, S, S, 3]`` and the boxes) in
    whole mode.
    """

    inputs: list[tuple[str, np.ndarray | WindowStack]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def read_file_bytes(path: str) -> bytes:
    """A file's bytes: local paths directly (any bytes in the name), others through
    Beam's filesystems (gs://, s3://, ...)."""
    if FileSystems.get_scheme(path) is None:
        with open(path, "rb") as handle:
            return handle.read()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def decode_file(
    path: str,
    image_size: int,
    max_pixels: int,
    mode: str = SINGLE,
    grid: Grid = DEFAULT_GRID,
) -> np.ndarray | WindowStack:
    """One file (an escaped CSV path) to a model input (single mode) or its window
    stack (whole mode); raises :class:`ImageDecodeError` with the reason."""
    try:
        data = read_file_bytes(unescape_path(path))
    except Exception as error:  # noqa: BLE001  (every filesystem raises its own kind)
        details = getattr(error, "exception_details", None) or {}  # BeamIOError
        cause = next(iter(details.values()), None) or error
        reason = getattr(cause, "strerror", None) or str(cause)
        raise ImageDecodeError(path, f"cannot read file: {reason}") from error
    if mode == WHOLE:
        image = load_image(data, name=path, max_pixels=max_pixels)
        return photo_stack(image, image_size, grid)
    return preprocess_image_file(data, image_size, name=path, max_pixels=max_pixels)


class _DecodeBatchFn(beam.DoFn):
    def __init__(self, image_size: int, max_pixels: int, mode: str, grid: Grid):
        self._image_size = image_size
        self._max_pixels = max_pixels
        self._mode = mode
        self._grid = tuple(grid)
        self._read = Metrics.counter(METRICS_NAMESPACE, "images_read")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed_to_decode")

    def process(self, entries: Sequence[tuple[str, str]]):
        batch = DecodedBatch()
        for path, listing_error in entries:
            if listing_error:
                batch.errors.append((path, listing_error))
                continue
            try:
                decoded = decode_file(
                    path, self._image_size, self._max_pixels, self._mode, self._grid
                )
                batch.inputs.append((path, decoded))
                self._read.inc()
            except ImageDecodeError as error:
                batch.errors.append((path, error.reason))
                self._failed.inc()
        yield batch


class DecodeImageBatches(beam.PTransform):
    """Batches of ``(path, error)`` to :class:`DecodedBatch`; a bad file never fails
    its batch, and an entry that already has an error is passed on as one.

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
    ):
        super().__init__()
        self._image_size = image_size
        self._max_pixels = max_pixels
        self._mode = check_mode(mode)
        self._grid = tuple(grid)

    def expand(self, batches):
        return batches | "Decode" >> beam.ParDo(
            _DecodeBatchFn(self._image_size, self._max_pixels, self._mode, self._grid)
        )
