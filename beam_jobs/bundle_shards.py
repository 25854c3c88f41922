"""CSV shards written where the rows are (``--num_shards`` auto, the default, and 1).

:class:`WriteBundleShards` writes the rows a worker holds into shard files of its own,
in the step that made them (no shuffle of rows: no runner holds the rows anywhere):
each writer rolls over to a new file every ``rows_per_shard`` rows (default
:data:`~beam_jobs.shards.ROWS_PER_SHARD`), sorts each file by path with bounded memory
(:class:`~beam_jobs.sorted_csv.SortedRecordWriter`: at most
:data:`~beam_jobs.sorted_csv.SORT_BUFFER_ROWS` rows in memory, the rest in sorted runs on
the worker's disk) and reports each file when it closes it (the last one in
``finish_bundle``, as Beam's runner-determined sharding in ``WriteToFiles`` does). The
part-filled last files of the writers are then packed into files of at most
``rows_per_shard`` rows (a streaming merge of each pack, in parallel), so a run writes
about ``ceil(rows / rows_per_shard)`` shards whatever its bundles, and one file when the
rows fit in one. ``--num_shards 1``: every file is merged into one sorted file by one
worker (a streaming merge; its memory does not grow with the rows, its time does: every
row passes through that one process).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from beam_jobs.errors import ClassifyJobError
from beam_jobs.shards import ROWS_PER_SHARD, ShardWritten, file_size
from beam_jobs.sorted_csv import SORT_BUFFER_ROWS, SortedRecordWriter, merge_sorted_csvs, to_record
from logo_batch.result_csv import ROW_COLUMNS

BUNDLE_FILE_PREFIX = "rows-"
"""Files :class:`WriteBundleShards` writes: ``rows-TOKEN-NNNNN.csv`` (TOKEN: the bundle's),
and ``rows-merged-NNNNN.csv`` for a pack of part-filled ones."""


class _WriteBundleShardsFn(beam.DoFn):
    """The rows of a bundle into files of at most ``rows_per_shard`` rows, each sorted by
    path; a :class:`ShardWritten` for each file as it is closed (the last one from
    ``finish_bundle``)."""

    def __init__(
        self, temp_dir: str, columns: Sequence[str], rows_per_shard: int, buffer_rows: int
    ):
        self._temp_dir = temp_dir
        self._columns = list(columns)
        self._rows_per_shard = rows_per_shard
        self._buffer_rows = buffer_rows
        self._writer: SortedRecordWriter | None = None

    def start_bundle(self):
        self._token = uuid.uuid4().hex[:12]  # a retried bundle writes new files
        self._files = 0
        self._writer = None

    def process(self, row: dict[str, str]):
        if self._writer is None:
            name = f"{BUNDLE_FILE_PREFIX}{self._token}-{self._files:05d}.csv"
            self._files += 1
            self._writer = SortedRecordWriter(
                FileSystems.join(self._temp_dir, name), self._columns,
                buffer_rows=self._buffer_rows,
            )  # fmt: skip
        self._writer.add(to_record(row, self._columns))
        if self._writer.rows >= self._rows_per_shard:
            yield self._close()

    def finish_bundle(self):
        if self._writer is not None:
            yield GlobalWindows.windowed_value(self._close())

    def _close(self) -> ShardWritten:
        writer, self._writer = self._writer, None
        rows, errors = writer.close()
        name = writer.path.replace("\\", "/").rsplit("/", 1)[-1]
        return ShardWritten(name, rows, errors, file_size(writer.path))


def pack_shards(shards: Iterable[ShardWritten], rows_per_shard: int, one_file: bool = False):
    """``(pack, shard)`` for each written file: full files (``rows_per_shard`` rows) are
    packs of their own, part-filled ones are packed first-fit (largest first) into packs
    of at most ``rows_per_shard`` rows; ``one_file``: all in one pack."""
    shards = sorted(shards, key=lambda shard: shard.name)
    if one_file:
        for shard in shards:
            yield f"{BUNDLE_FILE_PREFIX}merged-00000", shard
        return
    packs: list[int] = []  # rows in each pack of part-filled files
    for shard in sorted(shards, key=lambda shard: (-shard.rows, shard.name)):
        if shard.rows >= rows_per_shard:
            yield shard.name, shard
            continue
        fits = (i for i, rows in enumerate(packs) if rows + shard.rows <= rows_per_shard)
        index = next(fits, None)
        if index is None:
            index = len(packs)
            packs.append(0)
        packs[index] += shard.rows
        yield f"{BUNDLE_FILE_PREFIX}merged-{index:05d}", shard


def _merge_pack(keyed_shards, temp_dir: str, columns: Sequence[str]):
    """A pack of files: one file as it is, several merged into ``PACK.csv``."""
    pack, shards = keyed_shards
    shards = sorted(shards, key=lambda shard: shard.name)
    if len(shards) == 1:
        yield shards[0]
        return
    name = f"{pack}.csv"
    path = FileSystems.join(temp_dir, name)
    sources = [FileSystems.join(temp_dir, shard.name) for shard in shards]
    rows, errors = merge_sorted_csvs(sources, path, columns)
    expected = sum(shard.rows for shard in shards)
    if rows != expected:  # the sources stay in the temporary folder, which the driver removes
        raise ClassifyJobError(f"{name}: merged {rows} rows from files that hold {expected}")
    yield ShardWritten(name, rows, errors, file_size(path))


class WriteBundleShards(beam.PTransform):
    """Rows to sorted CSV shards in ``temp_dir`` where they are, without a shuffle of
    rows; a :class:`ShardWritten` for each shard (see the module's notes).

    Takes one PCollection of rows or a tuple of them (each written by its own writers:
    no Flatten of rows). Each file has at most ``rows_per_shard`` rows; ``one_file``:
    all merged into one file sorted by path. Only a few small records per bundle are
    shuffled (to pack the part-filled files).
    """

    def __init__(
        self,
        temp_dir: str,
        *,
        rows_per_shard: int = ROWS_PER_SHARD,
        one_file: bool = False,
        columns: Sequence[str] = ROW_COLUMNS,
        sort_buffer_rows: int = SORT_BUFFER_ROWS,
    ):
        super().__init__()
        if rows_per_shard < 1 or sort_buffer_rows < 1:
            raise ValueError("rows_per_shard and sort_buffer_rows must be at least 1")
        self._temp_dir = temp_dir
        self._rows_per_shard = rows_per_shard
        self._one_file = one_file
        self._columns = list(columns)
        self._sort_buffer_rows = sort_buffer_rows

    def expand(self, rows):
        branches = rows if isinstance(rows, tuple) else (rows,)
        fn = _WriteBundleShardsFn(
            self._temp_dir, self._columns, self._rows_per_shard, self._sort_buffer_rows
        )
        written = [
            branch | f"WriteFiles{index}" >> beam.ParDo(fn) for index, branch in enumerate(branches)
        ]
        return (
            tuple(written)
            | "AllFiles" >> beam.Flatten()
            | "OneKey" >> beam.Map(lambda shard: (None, shard))
            | "GatherFiles" >> beam.GroupByKey()
            | "Pack"
            >> beam.FlatMap(
                lambda keyed, n, one: pack_shards(keyed[1], n, one),
                self._rows_per_shard,
                self._one_file,
            )  # fmt: skip
            | "GroupPacks" >> beam.GroupByKey()
            | "MergePacks" >> beam.FlatMap(_merge_pack, self._temp_dir, self._columns)
        )
