"""File lists (``--file-list``): the files to classify named in a text or CSV file.

- A list whose name ends with ``.csv`` (before a compression extension such as
  ``.gz``) is CSV: the paths are in the column named ``path`` (any letter case) when
  the first row has one (that row is the header), else in the first column (the first
  row is then a path too). Any other list has one path per line.
- A path is taken as written, less its line ending (``\\n`` or ``\\r\\n``): no other
  space is stripped. Blank lines and blank CSV rows are skipped; a CSV row with cells
  but no path is an error row (``LIST:LINE``, ``row LINE of the file list has no path``).
- A relative path is relative to the list's folder; ``gs://...`` and other URIs and
  absolute paths are used as they are (``file://`` is a local path).
- Lists are read with Beam's file systems (local, ``gs://``, ...), compressed ones by
  their extension (a truncated ``.gz``, ``.bz2`` or ``.xz`` list is an error), as a
  stream: a list of millions of paths is never held in memory.
  Bytes that are not UTF-8 stay the path's bytes (the CSV escapes them); a UTF-8 byte
  order mark at the start is ignored.
- Every path listed gets one row; a path listed twice (in one list or several, or
  also found in an ``--input`` folder) gets one row (:class:`~beam_jobs.matching.MatchInputs`).
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import gzip
import lzma
import os
from collections.abc import Iterable, Iterator
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs.file_facts import FileEntry, entry_of
from beam_jobs.inputs import FileListSpec
from logo_batch.result_csv import escape_path

PATH_COLUMN = "path"
_BOM = "\ufeff"


class ListedPath(NamedTuple):
    """A path named by a list (escaped), whether it is local, and the list naming it."""

    path: str
    local: bool
    list_path: str
    error: str = ""

    def entry(self) -> FileEntry:
        """The file's :class:`FileEntry` (one stat): a missing file is an error naming it."""
        if self.error:
            return FileEntry(self.path, self.error)
        return entry_of(self.path, self.local, f"no such file (listed in {self.list_path})")


def is_csv_list(path: str) -> bool:
    """A list named ``*.csv`` (or ``*.csv.gz``, ...) is CSV; any other is one path a line."""
    name = path.rsplit("/", 1)[-1]
    if CompressionTypes.detect_compression_type(name) != CompressionTypes.UNCOMPRESSED:
        name = os.path.splitext(name)[0]
    return name.lower().endswith(".csv")


def resolve_listed(entry: str, spec: FileListSpec) -> tuple[str, bool]:
    """A path as listed -> ``(path, local)``: relative paths are relative to the list's folder."""
    if entry.startswith("file://"):
        return os.path.abspath(entry[len("file://") :]), True
    if FileSystems.get_scheme(entry):
        return entry, False
    if os.path.isabs(entry):
        return os.path.abspath(entry), True
    if spec.local:
        return os.path.abspath(os.path.join(os.path.dirname(spec.path), entry)), True
    while entry.startswith("./"):
        entry = entry[2:]
    return f"{spec.path.rsplit('/', 1)[0]}/{entry}", False  # URIs use "/" on every store


# The standard library's readers fail on a truncated file; Beam's CompressedFile (used
# for the other compressions) ends quietly where the data stops.
_STRICT_DECOMPRESSORS = {
    ".gz": lambda raw: gzip.GzipFile(fileobj=raw, mode="rb"),
    ".bz2": bz2.BZ2File,
    ".xz": lzma.LZMAFile,
}


@contextlib.contextmanager
def _open_list(path: str):
    ext = os.path.splitext(path.rsplit("/", 1)[-1])[1].lower()
    opener = _STRICT_DECOMPRESSORS.get(ext)
    compression = CompressionTypes.UNCOMPRESSED if opener else CompressionTypes.AUTO
    with FileSystems.open(path, compression_type=compression) as raw:
        if opener is None:
            yield raw
        else:
            with opener(raw) as handle:
                yield handle


def _lines(spec: FileListSpec) -> Iterator[str]:
    """The list's lines as text with their line endings (a stream)."""
    with _open_list(spec.path) as handle:
        first = True
        for raw in iter(handle.readline, b""):
            line = raw.decode("utf-8", "surrogateescape")
            if first and line.startswith(_BOM):
                line = line[len(_BOM) :]
            first = False
            yield line


def _text_paths(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    for number, line in enumerate(lines, start=1):
        path = line.removesuffix("\n").removesuffix("\r")
        if path.strip():
            yield number, path


def _csv_paths(lines: Iterable[str]) -> Iterator[tuple[int, str]]:
    """``(line number, path or "")``: the ``path`` column, else the first one."""
    reader = csv.reader(lines)
    column = None
    for row in reader:
        if not any(cell.strip() for cell in row):
            continue  # an empty row
        if column is None:
            names = [cell.strip().lower() for cell in row]
            if PATH_COLUMN in names:
                column = names.index(PATH_COLUMN)
                continue  # the header
            column = 0
        yield reader.line_num, row[column] if column < len(row) else ""


def listed_paths(spec: FileListSpec) -> Iterator[ListedPath]:
    """Every path ``spec`` names, resolved, in order (a stream: see the module's rules).

    A list that cannot be read, or a CSV list that cannot be parsed, gives an entry for
    the list itself with the reason after the paths read before it.
    """
    list_name = escape_path(spec.path)
    parse = _csv_paths if is_csv_list(spec.path) else _text_paths
    number = 0
    try:
        for number, entry in parse(_lines(spec)):
            if not entry:
                error = f"row {number} of the file list has no path"
                yield ListedPath(f"{list_name}:{number}", spec.local, list_name, error)
                continue
            path, local = resolve_listed(entry, spec)
            yield ListedPath(escape_path(path), local, list_name)
    except Exception as error:  # noqa: BLE001  (csv.Error, OSError, each file system's own)
        where = f" after line {number}" if number else ""
        reason = f"cannot read the file list{where}: {error}"
        yield ListedPath(list_name, spec.local, list_name, reason)
