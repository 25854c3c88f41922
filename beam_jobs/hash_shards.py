"""CSV shards by hash of the path (``--num_shards N``, N > 1).

:class:`WriteCsvShards`: a row goes to shard ``crc32(path) % N`` through a GroupByKey
(shards of about the same size, and the same path always in the same shard), one writer
per shard, each sorted by path in bounded memory (:mod:`beam_jobs.sorted_csv`). The
shuffle holds every row once (a runner that shuffles in its driver or workers, such as
the local runner, holds them there: about 0.4 KB per row).
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs.counts import CountGlobally
from beam_jobs.shards import (
    AUTO_SHARDS,
    ROWS_PER_SHARD,
    ShardWritten,
    file_size,
    shard_count,
    shard_name,
)
from beam_jobs.sorted_csv import SORT_BUFFER_ROWS, to_record, write_sorted_records
from logo_batch.result_csv import ROW_COLUMNS


def stable_hash(text: str) -> int:
    """A hash equal in every worker process (``hash()`` of a str is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogateescape"))


class _WriteShardFn(beam.DoFn):
    """One shard: its records (``None`` marks a shard that must exist even if empty)."""

    def __init__(self, temp_dir: str, columns: Sequence[str], buffer_rows: int):
        self._temp_dir = temp_dir
        self._columns = list(columns)
        self._buffer_rows = buffer_rows

    def process(self, keyed_records, num_shards: int):
        index, records = keyed_records
        name = shard_name(index, num_shards)
        path = FileSystems.join(self._temp_dir, name)
        count, errors = write_sorted_records(
            path, (record for record in records if record is not None), self._columns,
            buffer_rows=self._buffer_rows,
        )  # fmt: skip
        yield ShardWritten(name, count, errors, file_size(path))


class WriteCsvShards(beam.PTransform):
    """Rows to CSV shards in ``temp_dir`` by hash of the path, through a GroupByKey,
    each sorted by path; a :class:`ShardWritten` for every shard (an empty one has a
    header only).

    ``num_shards``: ``N`` shards, or :data:`AUTO_SHARDS` (one shard per
    ``rows_per_shard`` rows). ``row_count``: a one-element PCollection holding the
    number of rows (the files matched); counted here when not given. The job uses this
    for ``--num_shards N`` (N > 1) only: :class:`WriteBundleShards` writes without a
    shuffle.
    """

    def __init__(
        self,
        temp_dir: str,
        num_shards: int = AUTO_SHARDS,
        *,
        row_count=None,
        rows_per_shard: int = ROWS_PER_SHARD,
        columns: Sequence[str] = ROW_COLUMNS,
        sort_buffer_rows: int = SORT_BUFFER_ROWS,
    ):
        super().__init__()
        if num_shards < 0 or rows_per_shard < 1:
            raise ValueError("num_shards must be >= 0 (0: auto) and rows_per_shard >= 1")
        self._temp_dir = temp_dir
        self._num_shards = num_shards
        self._row_count = row_count
        self._rows_per_shard = rows_per_shard
        self._columns = list(columns)
        self._sort_buffer_rows = sort_buffer_rows

    def expand(self, rows):
        given, per_shard = self._num_shards, self._rows_per_shard

        def writers(count: int) -> int:
            return shard_count(count, given, per_shard)

        row_count = self._row_count
        if row_count is None:
            row_count = rows | "CountRows" >> CountGlobally()
        count = beam.pvalue.AsSingleton(row_count)
        columns = self._columns
        keyed = rows | "KeyByShard" >> beam.Map(  # a record: a third of a dict's memory
            lambda row, n: (stable_hash(row["path"]) % writers(n), to_record(row, columns)),
            n=count,
        )
        every = row_count | "EveryShard" >> beam.FlatMap(
            lambda n: [(index, None) for index in range(writers(n))]
        )
        return (
            (keyed, every)
            | "WithEmptyShards" >> beam.Flatten()
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard"
            >> beam.ParDo(
                _WriteShardFn(self._temp_dir, self._columns, self._sort_buffer_rows),
                num_shards=beam.pvalue.AsSingleton(row_count | "Writers" >> beam.Map(writers)),
            )
        )
