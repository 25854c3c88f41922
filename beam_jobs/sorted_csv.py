"""CSV files sorted by path, written and merged with bounded memory.

A writer keeps at most ``buffer_rows`` rows in memory: beyond that it writes sorted
runs to a local scratch folder and merges them into the file, so a file of any size is
written sorted with the same memory. A merge reads its sorted inputs as streams
(``heapq.merge``) and opens at most :data:`MERGE_FAN_IN` of them at once: its memory
does not depend on the rows. More inputs are merged in passes through the scratch
folder (the worker's temporary folder, ``TMPDIR``): each pass merges groups of
:data:`MERGE_FAN_IN` into runs there and deletes the runs it merged, so the scratch
folder holds about one copy of the rows at a time (a pass's runs, plus the group
being merged). ``n`` inputs take ``ceil(log_64(n)) - 1`` passes before the final
merge (none up to 64 inputs, one up to 4,096, two up to 262,144), each reading and
writing every row once more.

A row travels as a :data:`Record`: ``(path, error flag, the row as one CSV line)``, a
third of the memory of the row's dict (what a shuffle holds). Rows come in as dicts
keyed by the columns (a key that is not a column is an error, a missing one is written
empty, as ``csv.DictWriter`` does); files are RFC 4180 CSV with a header, written
through Beam's file systems (local, ``gs://``, ...).
"""

from __future__ import annotations

import contextlib
import csv
import heapq
import io
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from operator import itemgetter

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

SORT_BUFFER_ROWS = 10_000
"""Rows a writer sorts in memory before it spills a sorted run to local disk."""
MERGE_FAN_IN = 64
"""Files a merge reads at once; more are merged in passes."""
PATH_COLUMN = "path"
ERROR_COLUMN = "error"


def row_values(row: dict[str, str], columns: Sequence[str]) -> list[str]:
    """``row``'s values in ``columns`` order ("" for a missing column)."""
    if len(row) > len(columns) or not row.keys() <= set(columns):
        extra = sorted(set(row) - set(columns))
        raise ValueError(f"row has fields that are not CSV columns: {extra}")
    return [row.get(column, "") for column in columns]


Record = tuple[str, str, str]
"""A row as the writers take it: its path, "1" if it is an error row (else ""), and the
row as one CSV line (with its line ending)."""


def csv_line(values: Sequence[str]) -> str:
    """One CSV record (``csv.writer``'s quoting and ``\\r\\n``)."""
    buffer = io.StringIO()
    csv.writer(buffer).writerow(values)
    return buffer.getvalue()


def to_record(row: dict[str, str], columns: Sequence[str]) -> Record:
    """``row`` (a dict keyed by ``columns``) as a :data:`Record`."""
    values = row_values(row, columns)
    path, error = values[columns.index(PATH_COLUMN)], values[columns.index(ERROR_COLUMN)]
    return path, "1" if error else "", csv_line(values)


def _write_run(folder: str, rows: Iterable[Sequence[str]]) -> str:
    """A sorted run (no header) in the local scratch ``folder``; returns its path."""
    descriptor, path = tempfile.mkstemp(prefix="run-", suffix=".csv", dir=folder)
    with open(descriptor, "w", encoding="utf-8", newline="") as handle:
        csv.writer(handle).writerows(rows)
    return path


@contextlib.contextmanager
def _opened_csv(path: str, header: Sequence[str] | None) -> Iterator[Iterator[list[str]]]:
    """The rows of a CSV file (local scratch runs have no header; others must have
    ``header``)."""
    if header is None:
        with open(path, encoding="utf-8", newline="") as handle:
            yield csv.reader(handle)
        return
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        reader = csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        found = next(reader, None)
        if found != list(header):
            raise ValueError(f"{path}: header {found} is not the columns {list(header)}")
        yield reader


@contextlib.contextmanager
def _merged(
    paths: Sequence[str], key_index: int, scratch: str, header: Sequence[str] | None
) -> Iterator[Iterator[list[str]]]:
    """The rows of sorted CSV files as one sorted stream, at most MERGE_FAN_IN open."""
    paths = list(paths)
    while len(paths) > MERGE_FAN_IN:  # merge groups into local runs first (a pass)
        merged = []
        for start in range(0, len(paths), MERGE_FAN_IN):
            group = paths[start : start + MERGE_FAN_IN]
            with _merged(group, key_index, scratch, header) as rows:
                merged.append(_write_run(scratch, rows))
            if header is None:  # runs in the scratch folder, merged: not read again
                for path in group:
                    os.remove(path)
        paths, header = merged, None
    with contextlib.ExitStack() as stack:
        readers = [stack.enter_context(_opened_csv(path, header)) for path in paths]
        yield heapq.merge(*readers, key=itemgetter(key_index))


def _write_file(path: str, columns: Sequence[str], rows: Iterable[list[str]]) -> tuple[int, int]:
    """Writes a header and ``rows``; returns (rows, error rows)."""
    error_index = columns.index(ERROR_COLUMN)
    count = errors = 0
    with FileSystems.create(
        path, mime_type="text/csv", compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            writer = csv.writer(text, quoting=csv.QUOTE_MINIMAL)
            writer.writerow(columns)
            for values in rows:
                writer.writerow(values)
                count += 1
                errors += bool(values[error_index])
    return count, errors


def _write_records(path: str, columns: Sequence[str], records: Iterable[Sequence[str]]):
    """Writes a header and each record's line; returns (rows, error rows)."""
    count = errors = 0
    with FileSystems.create(
        path, mime_type="text/csv", compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            text.write(csv_line(columns))
            for _, error, line in records:
                text.write(line)
                count += 1
                errors += bool(error)
    return count, errors


class SortedRecordWriter:
    """Writes :data:`Record` rows added one at a time to ``path``, sorted by path under a
    header of ``columns``, holding at most ``buffer_rows`` of them in memory (sorted runs
    spill to a local scratch folder); :meth:`close` writes the file."""

    def __init__(self, path: str, columns: Sequence[str], *, buffer_rows: int = SORT_BUFFER_ROWS):
        if buffer_rows < 1:
            raise ValueError(f"buffer_rows must be at least 1, not {buffer_rows}")
        self.path = path
        self.rows = 0
        self._columns = list(columns)
        self._buffer_rows = buffer_rows
        self._buffer: list[Sequence[str]] = []
        self._runs: list[str] = []
        self._scratch: tempfile.TemporaryDirectory | None = None

    def add(self, record: Record) -> None:
        self._buffer.append(record)
        self.rows += 1
        if len(self._buffer) >= self._buffer_rows:
            if self._scratch is None:
                self._scratch = tempfile.TemporaryDirectory(prefix="logo-batch-sort-")
            self._buffer.sort(key=itemgetter(0))
            self._runs.append(_write_run(self._scratch.name, self._buffer))
            self._buffer = []

    def close(self) -> tuple[int, int]:
        """Writes the file; returns (rows, error rows)."""
        buffer, self._buffer = self._buffer, []
        buffer.sort(key=itemgetter(0))
        if self._scratch is None:
            return _write_records(self.path, self._columns, buffer)
        try:
            if buffer:
                self._runs.append(_write_run(self._scratch.name, buffer))
            buffer = []
            with _merged(self._runs, 0, self._scratch.name, None) as merged:
                return _write_records(self.path, self._columns, merged)
        finally:
            self._scratch.cleanup()
            self._scratch = None


def write_sorted_records(
    path: str,
    records: Iterable[Record],
    columns: Sequence[str],
    *,
    buffer_rows: int = SORT_BUFFER_ROWS,
) -> tuple[int, int]:
    """Writes :data:`Record` rows sorted by path under a header of ``columns``, holding
    at most ``buffer_rows`` of them in memory; returns (rows, error rows)."""
    writer = SortedRecordWriter(path, columns, buffer_rows=buffer_rows)
    for record in records:
        writer.add(record)
    return writer.close()


def write_sorted_csv(
    path: str,
    rows: Iterable[dict[str, str]],
    columns: Sequence[str],
    *,
    buffer_rows: int = SORT_BUFFER_ROWS,
) -> tuple[int, int]:
    """Writes ``rows`` (dicts) sorted by path, with a header, holding at most
    ``buffer_rows`` rows in memory; returns (rows, error rows)."""
    columns = list(columns)
    records = (to_record(row, columns) for row in rows)
    return write_sorted_records(path, records, columns, buffer_rows=buffer_rows)


def merge_sorted_csvs(sources: Sequence[str], path: str, columns: Sequence[str]) -> tuple[int, int]:
    """Merges CSV files each sorted by path (with the header ``columns``) into one sorted
    file at ``path``; returns (rows, error rows). Memory does not depend on the rows."""
    columns = list(columns)
    with tempfile.TemporaryDirectory(prefix="logo-batch-merge-") as scratch:
        with _merged(sources, columns.index(PATH_COLUMN), scratch, columns) as merged:
            return _write_file(path, columns, merged)
