"""The write side: CSV shards and the manifest in a temporary folder, then checked and moved.

Nothing appears at ``--output`` unless every matched file has exactly one row; the
temporary folder is named after the run (host, pid) so a later run can remove the
folders of killed runs, and an earlier run's shards are removed only at the final move.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import socket
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from beam_jobs.errors import ClassifyJobError
from beam_jobs.file_facts import ROW_COLUMNS
from beam_jobs.inputs import escape_glob, is_local, os_reason
from beam_jobs.paths import stable_hash

MANIFEST_FILE = "manifest.json"


_LOGGER = logging.getLogger(__name__)


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


def write_csv(path: str, rows: Iterable[dict[str, str]]) -> tuple[int, int]:
    """Writes rows (sorted by path) with a header; returns (rows, error rows)."""
    count = errors = 0
    with FileSystems.create(
        path, mime_type="text/csv", compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            writer = csv.DictWriter(text, fieldnames=ROW_COLUMNS, quoting=csv.QUOTE_MINIMAL)
            writer.writeheader()
            for row in sorted(rows, key=lambda r: r["path"]):
                writer.writerow(row)
                count += 1
                errors += bool(row["error"])
    return count, errors


class _WriteShardFn(beam.DoFn):
    def __init__(self, temp_dir: str, num_shards: int):
        self._temp_dir = temp_dir
        self._num_shards = num_shards

    def process(self, keyed_rows):
        index, rows = keyed_rows
        name = shard_name(index, self._num_shards)
        path = FileSystems.join(self._temp_dir, name)
        count, errors = write_csv(path, rows)
        yield ShardWritten(name, count, errors, file_size(path))


class WriteCsvShards(beam.PTransform):
    """Rows to ``num_shards`` CSV files in ``temp_dir``, each sorted by path."""

    def __init__(self, temp_dir: str, num_shards: int = 1):
        super().__init__()
        self._temp_dir = temp_dir
        self._num_shards = num_shards

    def expand(self, rows):
        num_shards = self._num_shards
        return (
            rows
            | "KeyByShard" >> beam.Map(lambda row: (stable_hash(row["path"]) % num_shards, row))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(self._temp_dir, num_shards))
        )


def _write_manifest(keyed_entries, path: str):
    _, entries = keyed_entries
    manifest = {"matched": 0, "shards": {}}
    for kind, value in entries:
        if kind == "matched":
            manifest["matched"] += value
        else:
            manifest["shards"][value.name] = {
                "rows": value.rows,
                "errors": value.errors,
                "size": value.size,
            }
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
    stem, ext = os.path.splitext(output)
    shard = re.compile(
        re.escape(os.path.basename(stem)) + r"-\d{5}-of-\d{5}" + re.escape(ext or ".csv")
    )
    if is_local(output):
        folder = os.path.dirname(output)
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        found = [os.path.join(folder, n) for n in names if shard.fullmatch(n)]
        return sorted(found + ([output] if os.path.isfile(output) else []))
    pattern = escape_glob(stem) + "-*-of-*" + escape_glob(ext or ".csv")
    found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    found = [path for path in found if shard.fullmatch(path.rsplit("/", 1)[-1])]
    return sorted(found + ([output] if FileSystems.exists(output) else []))
