"""The write side: CSV shards and the manifest in a temporary folder, then checked and moved.

**Shards, where the rows are (``--num_shards`` auto, the default, and 1).**
:class:`WriteBundleShards` writes the rows a worker holds into shard files of its own,
in the step that made them (no shuffle of rows: no runner holds the rows anywhere):
each writer rolls over to a new file every ``rows_per_shard`` rows (default
:data:`ROWS_PER_SHARD`), sorts each file by path with bounded memory
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

**Shards by hash (``--num_shards N``, N > 1).** :class:`WriteCsvShards`: a row goes to
shard ``crc32(path) % N`` through a GroupByKey (shards of about the same size, and the
same path always in the same shard), one writer per shard, each sorted as above. The
shuffle holds every row once (a runner that shuffles in its driver or workers, such as
the local runner, holds them there: about 0.4 KB per row).

**Counts.** Each writer records what it wrote (rows, error rows, bytes) and the manifest
gathers those records with the number of files matched; the driver checks them and each
shard's size on storage (one listing of the temporary folder), never by reading rows.
Nothing appears at ``--output`` unless every matched file has exactly one row; the
temporary folder is named after the run (host, pid) so a later run can remove the
folders of killed runs, and an earlier run's shards are removed only at the final move.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems
from apache_beam.transforms.window import GlobalWindows

from beam_jobs.counts import CountGlobally
from beam_jobs.errors import ClassifyJobError
from beam_jobs.inputs import escape_glob, is_local, os_reason
from beam_jobs.paths import stable_hash
from beam_jobs.sorted_csv import (
    SORT_BUFFER_ROWS,
    SortedRecordWriter,
    merge_sorted_csvs,
    to_record,
    write_sorted_csv,
    write_sorted_records,
)
from logo_batch.result_csv import ROW_COLUMNS, local_output_files, shard_pattern

MANIFEST_FILE = "manifest.json"
AUTO_SHARDS = 0
"""``--num_shards`` auto: the shard count follows the rows (:func:`shard_count`)."""
ROWS_PER_SHARD = 10_000
"""Rows per shard with auto shards (on average at most; see the module's notes)."""

_LOGGER = logging.getLogger(__name__)


def shard_count(
    rows: int, num_shards: int = AUTO_SHARDS, rows_per_shard: int = ROWS_PER_SHARD
) -> int:
    """Shards for ``rows`` rows: ``num_shards`` when given, else one per
    ``rows_per_shard`` rows (at least one)."""
    if num_shards != AUTO_SHARDS:
        return num_shards
    return max(1, math.ceil(rows / rows_per_shard))


def parse_num_shards(text: str) -> int:
    """``--num_shards``: ``auto`` (:data:`AUTO_SHARDS`) or a count of at least 1."""
    if text.strip().lower() == "auto":
        return AUTO_SHARDS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"--num_shards must be auto or a whole number >= 1, not {text!r}")
    return value


def shard_name(index: int, num_shards: int) -> str:
    return f"shard-{index:05d}-of-{num_shards:05d}.csv"


def output_paths(output: str, num_shards: int) -> list[str]:
    """Final file names: ``output`` itself, or ``stem-00000-of-0000N.ext`` per shard."""
    if num_shards == 1:
        return [output]
    stem, ext = os.path.splitext(output)
    return [f"{stem}-{i:05d}-of-{num_shards:05d}{ext or '.csv'}" for i in range(num_shards)]


@dataclass(frozen=True)
class ShardWritten:
    """What a shard writer wrote: file name (in the temporary folder), counts and size.

    The driver checks the job with these counts (rows = files matched) and the file's
    size on storage, never by reading the rows again.
    """

    name: str
    rows: int
    errors: int
    size: int


def write_csv(
    path: str, rows: Iterable[dict[str, str]], columns: Sequence[str] = ROW_COLUMNS
) -> tuple[int, int]:
    """Writes rows (sorted by path) with a header; returns (rows, error rows).

    At most :data:`~beam_jobs.sorted_csv.SORT_BUFFER_ROWS` rows are held in memory.
    """
    return write_sorted_csv(path, rows, columns)


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


def _write_manifest(keyed_entries, path: str):
    _, entries = keyed_entries
    manifest = {"matched": 0, "num_shards": 0, "shards": {}}
    for kind, value in entries:
        if kind == "matched":
            manifest["matched"] += value
        else:
            manifest["shards"][value.name] = {
                "rows": value.rows,
                "errors": value.errors,
                "size": value.size,
            }
    manifest["num_shards"] = len(manifest["shards"])
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(manifest, sort_keys=True).encode("utf-8"))
    yield manifest


class WriteManifest(beam.PTransform):
    """The matched count and what each shard writer wrote, as one JSON file.

    The last transform of the pipeline: everything else is upstream of it.
    """

    def __init__(self, matched_count, path: str):
        super().__init__()
        self._matched_count = matched_count
        self._path = path

    def expand(self, shards_written):
        matched = self._matched_count | "TagMatched" >> beam.Map(lambda n: ("matched", n))
        written = shards_written | "TagShards" >> beam.Map(lambda s: ("shard", s))
        return (
            (matched, written)
            | "Entries" >> beam.Flatten()
            | "OneKey" >> beam.Map(lambda entry: (None, entry))
            | "Gather" >> beam.GroupByKey()
            | "Write" >> beam.FlatMap(_write_manifest, self._path)
        )


@dataclass(frozen=True)
class CheckedShards:
    """The shards of a manifest, checked against storage: their paths and counts."""

    paths: list[str]
    rows: int
    errors: int


_HASH_SHARD = re.compile(r"shard-\d{5}-of-(\d{5})\.csv")


def check_shards(temp_dir: str, manifest: dict) -> CheckedShards:
    """Checks that every shard of ``manifest`` was reported by its writer and has the
    size its writer reported (one listing of ``temp_dir``, no row read); raises
    :class:`ClassifyJobError` naming the first shard that does not.

    Shards by hash (``shard-NNNNN-of-NNNNN.csv``) must all be reported; other shards
    (:class:`WriteBundleShards`) are the ones reported, in the order of their names
    (a file no writer reported, e.g. a failed bundle's, is not part of the output).
    """
    reported = manifest["shards"]
    names = sorted(reported)
    by_hash = _HASH_SHARD.fullmatch(names[0]) if names else None
    if by_hash:
        names = [shard_name(i, int(by_hash[1])) for i in range(int(by_hash[1]))]
    found = FileSystems.match([FileSystems.join(escape_glob(temp_dir), "*.csv")])[0]
    sizes = {
        m.path.replace("\\", "/").rsplit("/", 1)[-1]: m.size_in_bytes for m in found.metadata_list
    }
    paths, rows, errors = [], 0, 0
    for name in names:
        if name not in reported:
            raise ClassifyJobError(f"{name}: no writer reported it")
        if name not in sizes:
            raise ClassifyJobError(f"{name}: the writer reported it, but it is gone")
        if sizes[name] != reported[name]["size"]:
            raise ClassifyJobError(
                f"{name}: {sizes[name]} bytes on storage, the writer reported "
                f"{reported[name]['size']}"
            )
        rows += reported[name]["rows"]
        errors += reported[name]["errors"]
        paths.append(FileSystems.join(temp_dir, name))
    return CheckedShards(paths, rows, errors)


def file_size(path: str) -> int:
    """Bytes of a file on any Beam file system (a metadata look-up, no read)."""
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes


def delete_quietly(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # noqa: BLE001
        _LOGGER.warning("could not remove temporary folder %s", path, exc_info=True)


def check_output(output: str, num_shards: int) -> None:
    """Fails before any work when the CSV file(s) could not be written at ``output``.

    Local outputs only (a remote store is checked when written): no output path may
    be a folder, and the nearest existing folder above must be a writable folder.
    Creates the output's folder.
    """
    if not is_local(output):
        return
    for path in [output, *output_paths(output, num_shards)]:
        if os.path.isdir(path):
            raise ClassifyJobError(
                f"{path}: --output is a folder; give a CSV file name, e.g. "
                f"{os.path.join(path, 'results.csv')}"
            )
    parent = os.path.dirname(output)
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ClassifyJobError(f"cannot write {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ClassifyJobError(f"cannot write {output}: {existing}: no permission to write there")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise ClassifyJobError(f"cannot write {output}: {parent}: {os_reason(error)}") from error


_TEMP_SUFFIX = re.compile(r"\.tmp-(?P<host>.+)-(?P<pid>\d+)-(?P<token>[0-9a-f]{12})")


def temp_folder(output: str) -> str:
    """``.NAME.tmp-HOST-PID-TOKEN`` beside the output: whose run made it, findable."""
    out_dir, out_name = os.path.split(output)
    token = uuid.uuid4().hex[:12]
    return FileSystems.join(
        out_dir, f".{out_name}.tmp-{socket.gethostname()}-{os.getpid()}-{token}"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_folders(output: str) -> list[str]:
    """Removes the temporary folders of ``output`` whose run is dead; returns them.

    A run that was killed (SIGKILL, SIGTERM, a crash) leaves its
    ``.NAME.tmp-HOST-PID-TOKEN`` folder. Only folders of this output, made on this
    host by a process that no longer exists, are removed: never another live run's.
    Local outputs only.
    """
    if not is_local(output):
        return []
    out_dir, out_name = os.path.split(output)
    prefix = f".{out_name}"
    removed = []
    try:
        names = os.listdir(out_dir)
    except OSError:
        return []
    for name in sorted(names):
        match = _TEMP_SUFFIX.fullmatch(name[len(prefix) :]) if name.startswith(prefix) else None
        if not match or match["host"] != socket.gethostname() or _pid_alive(int(match["pid"])):
            continue
        path = os.path.join(out_dir, name)
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
            _LOGGER.info("removed %s, left by a run that was killed", path)
    return removed


def previous_outputs(output: str) -> list[str]:
    """The CSV files an earlier run of ``output`` wrote, with any ``--num_shards``:
    ``output`` itself and ``STEM-NNNNN-of-NNNNN.EXT``."""
    if is_local(output):
        return local_output_files(output)
    stem, ext = os.path.splitext(output)
    shard = shard_pattern(output)
    pattern = escape_glob(stem) + "-*-of-*" + escape_glob(ext or ".csv")
    found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    found = [path for path in found if shard.fullmatch(path.rsplit("/", 1)[-1])]
    return sorted(found + ([output] if FileSystems.exists(output) else []))
