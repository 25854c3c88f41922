"""Files to model inputs: the first PTransforms of the job (each usable on its own).

    MatchInputs (MatchImageFiles | ReadFileList, OneEntryPerFile) -> GroupIntoBatches
    -> DecodeImageBatches

A local ``--input`` folder is listed in two steps so that no process holds its whole
listing: :func:`~beam_jobs.inputs.plan_local_listing` walks the folders (one worker)
and emits :class:`~beam_jobs.inputs.ListingUnit` s of at most
:data:`~beam_jobs.inputs.FILES_PER_UNIT` files each (a few folders, or a range of names
of a large one: no file names), the units are spread over the workers (``SpreadUnits``,
a Reshuffle; the job's Dask runner splits them by the files they name, about one a
partition), and each worker lists its units' files
(:func:`~beam_jobs.inputs.list_unit_entries`, one stat a file).

Why the batching is done here, not by RunInference's ``BatchElements``: batches are
packed where the entries are listed (one small bytes object per batch) and only then
spread over the workers (a Reshuffle), so no runner holds a Python object per file in
a shuffle. ``BatchElements`` would batch after a shuffle of single entries. Both
flush the last partial batch in ``finish_bundle``; Beam's own Dask runner (2.77) drops
what ``finish_bundle`` emits (``runners/dask/transform_evaluator.py``), the job's
``--runner DaskRunner`` (:mod:`beam_jobs.dask_runner`) keeps it, and passes a
Reshuffle over when the collection already has two partitions per worker thread. No DoFn
has tagged outputs (the Dask runner merges them into one collection).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.transforms.window import GlobalWindows

from beam_jobs.file_facts import FileEntry, metadata_entry
from beam_jobs.file_lists import listed_paths
from beam_jobs.inputs import (
    FILES_PER_UNIT,
    FileListSpec,
    InputSpec,
    ListingUnit,
    Spec,
    list_unit_entries,
    plan_local_listing,
    resolve_input,
)
from beam_jobs.progress import LISTED, ProgressCounter
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
from logo_batch.result_csv import unescape_path
from logo_batch.whole_photo import DEFAULT_GRID, Grid, WindowStack, photo_stack


class _PlanListingFn(beam.DoFn):
    def __init__(self, files_per_unit: int = FILES_PER_UNIT):
        self._files_per_unit = files_per_unit

    def process(self, spec: InputSpec):
        yield from plan_local_listing(spec.root, spec.pattern, self._files_per_unit)


class _ListUnitFn(beam.DoFn):
    def __init__(self, pattern: str | None, progress_dir: str | None = None):
        self._pattern = pattern
        self._listed = ProgressCounter(progress_dir, LISTED)

    def process(self, unit: ListingUnit):
        for entry in list_unit_entries(unit, self._pattern):
            self._listed.add()
            yield entry

    def finish_bundle(self):
        self._listed.flush()


class _RemoteMatchFn(beam.DoFn):
    def __init__(self, progress_dir: str | None = None):
        self._listed = ProgressCounter(progress_dir, LISTED)

    def process(self, metadata):
        if is_image_path(metadata.path):
            self._listed.add()
            yield metadata_entry(metadata)

    def finish_bundle(self):
        self._listed.flush()


class MatchImageFiles(beam.PTransform):
    """Every image file (by extension, any case) of an ``--input`` as a :class:`FileEntry`.

    ``path`` is escaped (:func:`~logo_batch.result_csv.escape_path`); ``error`` is "" for a
    file to read, or why the entry cannot be (an unreadable folder, a broken symbolic
    link): each entry becomes one CSV row. Local inputs are listed as
    :func:`~beam_jobs.inputs.list_local_entries` lists them, in units of at most
    ``files_per_unit`` files spread over the workers
    (:func:`~beam_jobs.inputs.plan_local_listing`, see the module's notes); remote ones
    by Beam's ``fileio.MatchFiles`` (one worker holds the match's metadata list). Both
    give each file's size and modification time. ``progress_dir``: count the files
    there (:mod:`beam_jobs.progress`).
    """

    def __init__(
        self,
        spec: InputSpec | str,
        progress_dir: str | None = None,
        files_per_unit: int = FILES_PER_UNIT,
    ):
        super().__init__()
        self._spec = spec if isinstance(spec, InputSpec) else resolve_input(spec)
        self._progress_dir = progress_dir
        self._files_per_unit = files_per_unit

    def expand(self, pbegin):
        if self._spec.local:
            return (
                pbegin
                | "Input" >> beam.Create([self._spec])
                | "PlanListing" >> beam.ParDo(_PlanListingFn(self._files_per_unit))
                | "SpreadUnits" >> beam.Reshuffle()
                | "ListUnits" >> beam.ParDo(_ListUnitFn(self._spec.pattern, self._progress_dir))
            )
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._spec.pattern)
            | "KeepImages" >> beam.ParDo(_RemoteMatchFn(self._progress_dir))
        )


class _ReadFileListFn(beam.DoFn):
    def __init__(self, progress_dir: str | None = None):
        self._listed = ProgressCounter(progress_dir, LISTED)

    def process(self, spec: FileListSpec):
        for listed in listed_paths(spec):
            self._listed.add()
            yield listed

    def finish_bundle(self):
        self._listed.flush()


class ReadFileList(beam.PTransform):
    """Every path a ``--file-list`` names as a :class:`~beam_jobs.file_lists.ListedPath`
    (not yet looked at: :class:`OneEntryPerFile` does that, spread over the workers).

    The list is read as a stream by one worker (:func:`~beam_jobs.file_lists.listed_paths`).
    """

    def __init__(self, spec: FileListSpec, progress_dir: str | None = None):
        super().__init__()
        self._spec = spec
        self._progress_dir = progress_dir

    def expand(self, pbegin):
        return (
            pbegin
            | "List" >> beam.Create([self._spec])
            | "ReadList" >> beam.ParDo(_ReadFileListFn(self._progress_dir))
        )


class _OneEntryFn(beam.DoFn):
    def __init__(self):
        self._duplicates = Metrics.counter(METRICS_NAMESPACE, "duplicate_entries")

    def process(self, keyed):
        _, found = keyed
        found = list(found)
        if len(found) > 1:
            self._duplicates.inc(len(found) - 1)
        listed = [item for item in found if isinstance(item, FileEntry)]
        if listed:  # found in a folder: its entry is already there
            yield min(listed, key=lambda entry: (bool(entry.error), entry.error))
        else:
            yield min(found, key=lambda item: item.list_path).entry()


class OneEntryPerFile(beam.PTransform):
    """One :class:`FileEntry` per path, whatever number of inputs or lists named it.

    A GroupByKey by path: paths named by lists are looked at here (one stat each, so
    spread over the workers), and a path found several times is classified once
    (counter ``duplicate_entries``).
    """

    def expand(self, found):
        return (
            found
            | "KeyByPath" >> beam.Map(lambda item: (item.path, item))
            | "GroupByPath" >> beam.GroupByKey()
            | "OneEntry" >> beam.ParDo(_OneEntryFn())
        )


class _CountEntriesFn(beam.DoFn):
    def __init__(self):
        self._matched = Metrics.counter(METRICS_NAMESPACE, "files_matched")
        self._errors = Metrics.counter(METRICS_NAMESPACE, "listing_errors")

    def process(self, entry: FileEntry):
        self._matched.inc()
        if entry.error:
            self._errors.inc()
        yield entry


class MatchInputs(beam.PTransform):
    """Every file of every input (``--input`` folders and globs, ``--file-list`` lists) as
    one :class:`FileEntry` per path (counters ``files_matched``, ``listing_errors``).

    One folder or glob is listed as it is; several inputs, or any list, go through
    :class:`OneEntryPerFile`.
    """

    def __init__(self, specs: Sequence[Spec], progress_dir: str | None = None):
        super().__init__()
        self._specs = list(specs)
        self._progress_dir = progress_dir

    def expand(self, pbegin):
        found = []
        for index, spec in enumerate(self._specs):
            if isinstance(spec, InputSpec):
                transform = f"MatchImageFiles{index}" >> MatchImageFiles(spec, self._progress_dir)
            else:
                transform = f"ReadFileList{index}" >> ReadFileList(spec, self._progress_dir)
            found.append(pbegin | transform)
        if len(found) == 1 and isinstance(self._specs[0], InputSpec):
            entries = found[0]
        else:
            entries = (
                tuple(found)
                | "AllInputs" >> beam.Flatten()
                | "OneEntryPerFile" >> OneEntryPerFile()
            )
        return entries | "CountMatched" >> beam.ParDo(_CountEntriesFn())


_PACK_CODER = beam.coders.FastPrimitivesCoder()


class _PackBatchesFn(beam.DoFn):
    """Consecutive entries of a bundle into batches of ``batch_size``, each packed as one
    bytes object (its entries' fields as plain tuples, zlib-compressed: paths share long
    prefixes): full batches as they fill, the last part-filled one from ``finish_bundle``."""

    def __init__(self, batch_size: int):
        self._batch_size = batch_size
        self._batch: list[tuple] = []

    def start_bundle(self):
        self._batch = []

    def process(self, entry: FileEntry | tuple):
        self._batch.append(tuple(entry))
        if len(self._batch) >= self._batch_size:
            yield self._pack()

    def finish_bundle(self):
        if self._batch:
            yield GlobalWindows.windowed_value(self._pack())

    def _pack(self) -> bytes:
        batch, self._batch = tuple(self._batch), []
        return zlib.compress(_PACK_CODER.encode(batch), 1)


def _unpack(packed: bytes) -> tuple[tuple, ...]:
    return _PACK_CODER.decode(zlib.decompress(packed))


class GroupIntoBatches(beam.PTransform):
    """Entries (:class:`FileEntry`, path first) into batches of at most ``batch_size``
    (tuples of each entry's fields), spread over the workers.

    Consecutive entries of a bundle are batched where they are, each batch packed into
    one zlib-compressed bytes object (about 10 to 30 bytes a file, and one object per
    batch: a runner that shuffles in its driver holds little), then the batches are
    spread over the workers (a Reshuffle; the job's Dask runner passes it over when
    the entries already have two partitions per worker thread, as a spread listing
    does). Every batch is full but the last of each bundle. The last batch comes from
    ``finish_bundle``, which every runner of the job keeps (Beam's own Dask runner does
    not; the job's ``--runner DaskRunner`` does: :mod:`beam_jobs.dask_runner`).
    """

    def __init__(self, batch_size: int):
        super().__init__()
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        self._batch_size = batch_size

    def expand(self, entries):
        return (
            entries
            | "PackBatches" >> beam.ParDo(_PackBatchesFn(self._batch_size))
            | "SpreadBatches" >> beam.Reshuffle()
            | "Unpack" >> beam.Map(_unpack)
        )


@dataclass
class DecodedBatch:
    """Model inputs of the files of a batch that decoded, and the errors of the rest,
    each keyed by the file's :class:`FileEntry` (its path and the facts its row records).

    An input is a ``float32 [S, S, 3]`` array in single mode, a
    :class:`~logo_batch.whole_photo.WindowStack` (``[W, S, S, 3]`` and the boxes) in
    whole mode.
    """

    inputs: list[tuple[FileEntry, np.ndarray | WindowStack]] = field(default_factory=list)
    errors: list[tuple[FileEntry, str]] = field(default_factory=list)


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
                decoded = decode_file(
                    entry.path, self._image_size, self._max_pixels, self._mode, self._grid
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
