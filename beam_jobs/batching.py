"""Entries into batches of files, spread over the workers (:class:`GroupIntoBatches`).

Why the batching is done here, not by RunInference's ``BatchElements``: batches are
packed where the entries are listed (one small bytes object per batch) and only then
spread over the workers (a Reshuffle), so no runner holds a Python object per file in
a shuffle. ``BatchElements`` would batch after a shuffle of single entries. Both
flush the last partial batch in ``finish_bundle``; Beam's own Dask runner (2.77) drops
what ``finish_bundle`` emits (``runners/dask/transform_evaluator.py``), the job's
``--runner DaskRunner`` (:mod:`beam_jobs.dask_runner`) keeps it, and passes a
Reshuffle over when the collection already has two partitions per worker thread.
"""

from __future__ import annotations

import zlib

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows

from beam_jobs.file_facts import FileEntry

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
