"""``--previous``: carry an earlier output's rows over when their files have not changed.

A row of the earlier output is carried over as it is (the same bytes) when its file is
still among the inputs with the same size and modification time, the row is not an
error, and its fingerprint is this run's (same model file, metadata and settings,
:mod:`beam_jobs.fingerprint`). Every other file is classified: new files, changed
files, and files whose earlier row was an error (retried: the cause may be gone).
Rows of files that are no longer among the inputs drop out.

Same size and modification time do not prove same content (a file rewritten within the
file system's time resolution, or with its time set back). ``--checksum`` compares
content instead, as ``rsync --checksum`` does: the job hashes each file whose earlier
row has its size (SHA-256 of its bytes, read in chunks) and reuses the row only when
the row's ``sha256`` column is that hash; every row it writes records its file's hash
(the hash is in the row, so no other file travels with the output). A row written
without ``--checksum`` has no hash: a ``--checksum`` run classifies its file again.
The cost is reading every file whose size matches, once.

The earlier output (a CSV file, or the shards ``STEM-NNNNN-of-NNNNN.csv`` of a run with
``--num_shards``) is read inside the pipeline (each file streamed by a worker) and
joined with this run's files by path: a CoGroupByKey, so whichever process shuffles
holds every earlier row (the whole row, as a dict of its columns) and every entry of
this run: the local runner's driver process, a Dask cluster's workers, Dataflow's
shuffle service. The job's own code in the driver reads only the earlier output's
header and first row: when those show another model or other settings
(another fingerprint), or an output without the ``size``, ``modified`` and
``fingerprint`` columns, nothing can be reused and every file is classified again (the
run says why; it is not an error).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics

from beam_jobs.errors import ClassifyJobError
from beam_jobs.file_facts import FileEntry, with_checksum
from beam_jobs.inputs import is_local, local_path
from beam_jobs.output_files import previous_outputs
from beam_jobs.summary import METRICS_NAMESPACE
from logo_batch.result_csv import EARLIER_ROW_COLUMNS, ROW_COLUMNS

READABLE_HEADERS = (ROW_COLUMNS, EARLIER_ROW_COLUMNS)  # this version's, the one before sha256
REUSE_COUNTS_FILE = "reuse.json"
REUSED, NEW, CHANGED, RETRIED, REMOVED = "reused", "new", "changed", "retried", "removed"
KINDS = (REUSED, NEW, CHANGED, RETRIED, REMOVED)
_COUNTERS = {
    REUSED: "files_reused",
    NEW: "files_new",
    CHANGED: "files_changed",
    RETRIED: "files_retried",
    REMOVED: "previous_rows_removed",
}


@dataclass(frozen=True)
class PreviousOutput:
    """An earlier output: its CSV files, or none and ``note`` saying why none is usable."""

    name: str
    files: tuple[str, ...] = ()
    note: str = ""


def _open_rows(path: str) -> Iterator[list[str]]:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        yield from csv.reader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))


def open_previous(previous: str, fingerprint: str) -> PreviousOutput:
    """Finds the earlier output's CSV files and checks (header and first row only) that
    its rows can be reused by a run with ``fingerprint``.

    Raises :class:`ClassifyJobError` when there is no such output.
    """
    target = local_path(previous) if is_local(previous) else previous
    files = previous_outputs(target)
    if not files:
        raise ClassifyJobError(
            f"--previous {previous}: no such output (neither that CSV file nor its "
            f"shards NAME-NNNNN-of-NNNNN.csv)"
        )
    for path in files:
        try:
            rows = _open_rows(path)
            header = tuple(next(rows, ()))
            first = next(rows, None)
            rows.close()
        except Exception as error:  # noqa: BLE001  (csv.Error, decode errors, file systems')
            raise ClassifyJobError(f"--previous {previous}: cannot read {path}: {error}") from error
        if header not in READABLE_HEADERS:
            missing = [name for name in ROW_COLUMNS if name not in header]
            why = f"no {', '.join(missing)} column(s)" if missing else "other columns"
            return PreviousOutput(previous, note=f"{path} has {why} (another version wrote it)")
        if first is None:
            continue  # a shard no row hashed to
        theirs = dict(zip(header, first, strict=False)).get("fingerprint", "")
        if theirs != fingerprint:
            return PreviousOutput(
                previous,
                note=f"it was written with another model or other settings "
                f"(fingerprint {theirs or 'none'}, this run {fingerprint})",
            )
        break
    return PreviousOutput(previous, tuple(files))


def read_rows(path: str) -> Iterator[tuple[str, dict[str, str]]]:
    """``(path, row)`` for each row of an earlier output's CSV file (a stream); a file
    with other columns gives no rows (counter ``previous_files_unusable``)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        reader = csv.DictReader(io.TextIOWrapper(raw, encoding="utf-8", newline=""))
        if tuple(reader.fieldnames or ()) not in READABLE_HEADERS:
            Metrics.counter(METRICS_NAMESPACE, "previous_files_unusable").inc()
            return
        for row in reader:
            yield row["path"], row


def reusable(row: dict, entry: FileEntry, fingerprint: str, checksum: bool = False) -> bool:
    """Whether ``row`` (an earlier output's) still holds for the file ``entry``: same
    size and modification time, or with ``checksum`` same size and content (the row's
    ``sha256`` against ``entry.sha256``, the file's now; a row without one does not
    hold)."""
    if None in row or any(value is None for value in row.values()):
        return False  # a short or long line: not a row this job wrote
    same = (
        not row["error"]
        and not entry.error
        and entry.size is not None
        and row["size"] == str(entry.size)
        and row["fingerprint"] == fingerprint
    )
    if checksum:
        return same and bool(row.get("sha256")) and row.get("sha256") == entry.sha256
    return same and bool(entry.modified) and row["modified"] == entry.modified


def decide(
    entry: FileEntry | None, rows: Iterable[dict], fingerprint: str, checksum: bool = False
) -> tuple[str, FileEntry | dict | None]:
    """What to do with one path: ``(REUSED, row)``, ``(NEW | CHANGED | RETRIED, entry)``
    (classify it) or ``(REMOVED, None)`` (only the earlier output has it). ``checksum``:
    the file is hashed (once, only when a row of its size could hold) and compared by
    content (:func:`reusable`); the entry to classify carries the hash."""
    rows = list(rows)
    if entry is None:
        return REMOVED, None
    if not rows:
        return NEW, entry
    if checksum and any(row.get("size") == str(entry.size) for row in rows):
        entry = with_checksum(entry)
    for row in rows:
        if reusable(row, entry, fingerprint, checksum):
            return REUSED, row
    if all(row.get("error") for row in rows):
        return RETRIED, entry
    return CHANGED, entry


class _DecideFn(beam.DoFn):
    def __init__(self, fingerprint: str, checksum: bool = False):
        self._fingerprint = fingerprint
        self._checksum = checksum
        self._counters = {
            kind: Metrics.counter(METRICS_NAMESPACE, name) for kind, name in _COUNTERS.items()
        }

    def process(self, keyed):
        _, groups = keyed
        entries = list(groups["current"])
        entry = entries[0] if entries else None
        kind, payload = decide(entry, groups["previous"], self._fingerprint, self._checksum)
        self._counters[kind].inc()
        yield kind, payload


def _spread_read(keyed) -> Iterator[tuple[str, dict[str, str]]]:
    _, paths = keyed
    for path in paths:
        yield from read_rows(path)


def _write_counts(counted: list[tuple[str, int]], path: str) -> dict[str, int]:
    counts = {kind: 0 for kind in KINDS}
    counts.update(dict(counted))
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(counts, sort_keys=True).encode("utf-8"))
    return counts


class ReusePrevious(beam.PTransform):
    """This run's entries and an earlier output -> ``(entries to classify, rows carried)``.

    A CoGroupByKey by path of the entries and the earlier output's rows (read by the
    workers, one file each); :func:`decide` per path. Writes the count of each kind
    (:data:`KINDS`) as JSON to ``counts_path`` (the summary reads it: counters are not
    reported by every runner).
    """

    def __init__(
        self,
        previous: PreviousOutput,
        fingerprint: str,
        counts_path: str,
        *,
        checksum: bool = False,
    ):
        super().__init__()
        self._previous = previous
        self._fingerprint = fingerprint
        self._counts_path = counts_path
        self._checksum = checksum

    def expand(self, entries):
        rows = (
            entries.pipeline
            | "PreviousFiles" >> beam.Create(list(enumerate(self._previous.files)))
            | "SpreadFiles" >> beam.GroupByKey()
            | "ReadPreviousRows" >> beam.FlatMap(_spread_read)
        )
        current = entries | "KeyByPath" >> beam.Map(lambda entry: (entry.path, entry))
        decided = (
            {"current": current, "previous": rows}
            | "JoinByPath" >> beam.CoGroupByKey()
            | "Decide" >> beam.ParDo(_DecideFn(self._fingerprint, self._checksum))
        )
        _ = (
            decided
            | "Kinds" >> beam.Map(lambda decision: decision[0])
            | "CountKinds" >> beam.combiners.Count.PerElement()
            | "AllKinds" >> beam.combiners.ToList()
            | "WriteCounts" >> beam.Map(_write_counts, self._counts_path)
        )
        to_classify = decided | "ToClassify" >> beam.FlatMap(
            lambda decision: [decision[1]] if decision[0] in (NEW, CHANGED, RETRIED) else []
        )
        carried = decided | "Carried" >> beam.FlatMap(
            lambda decision: [decision[1]] if decision[0] == REUSED else []
        )
        return to_classify, carried


def read_reuse_counts(counts_path: str, metrics: dict[str, int]) -> dict[str, int] | None:
    """The counts :class:`ReusePrevious` wrote; else the job's Beam counters; None when a
    runner gave neither (Beam's own Dask runner computes only one leaf of a pipeline and
    reports no counters; the job's ``--runner DaskRunner`` computes them all)."""
    if FileSystems.exists(counts_path):
        with FileSystems.open(counts_path) as handle:
            found = json.loads(handle.read().decode("utf-8"))
        return {kind: int(n) for kind, n in found.items()}
    if _COUNTERS[REUSED] in metrics:
        return {kind: metrics.get(name, 0) for kind, name in _COUNTERS.items()}
    return None


def reuse_note(previous: PreviousOutput, counts: dict[str, int] | None) -> str:
    """The summary's words on ``--previous``: what was reused, or why nothing was."""
    if previous.note:
        return f"none reused from {previous.name}: {previous.note}"
    if counts is None:
        return f"rows reused from {previous.name}: not reported by this runner"
    details = ", ".join(f"{counts.get(kind, 0)} {kind}" for kind in KINDS[1:])
    return f"{counts.get(REUSED, 0)} reused from {previous.name} ({details})"
