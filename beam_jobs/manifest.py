"""The manifest of a run and the driver's check of it.

The manifest gathers the number of files matched, the files skipped for their extension
(by kind) and what each shard writer wrote (:class:`~beam_jobs.shards.ShardWritten`)
into one JSON file, the pipeline's last step.
The driver checks it against storage (:func:`check_shards`: one listing of the
temporary folder, each shard's size; no row is read again): nothing appears at
``--output`` unless every matched file has exactly one row.
"""

from __future__ import annotations

import glob
import json
import re
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs.errors import ClassifyJobError
from beam_jobs.shards import shard_name
from beam_jobs.sorted_csv import write_sorted_records
from logo_batch.result_csv import ROW_COLUMNS

MANIFEST_FILE = "manifest.json"


def _write_manifest(keyed_entries, path: str):
    _, entries = keyed_entries
    manifest = {"matched": 0, "num_shards": 0, "shards": {}, "skipped": {}}
    for kind, value in entries:
        if kind == "matched":
            manifest["matched"] += value
        elif kind == "skipped":
            extension, count = value
            manifest["skipped"][extension] = manifest["skipped"].get(extension, 0) + count
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
    """The matched count, the skipped files (``(kind, count)`` pairs, :class:`~beam_jobs.
    matching.Matched`) and what each shard writer wrote, as one JSON file.

    The last transform of the pipeline: everything else is upstream of it.
    """

    def __init__(self, matched_count, path: str, skipped=None):
        super().__init__()
        self._matched_count = matched_count
        self._path = path
        self._skipped = skipped

    def expand(self, shards_written):
        matched = self._matched_count | "TagMatched" >> beam.Map(lambda n: ("matched", n))
        written = shards_written | "TagShards" >> beam.Map(lambda s: ("shard", s))
        tagged = [matched, written]
        if self._skipped is not None:
            tagged.append(self._skipped | "TagSkipped" >> beam.Map(lambda s: ("skipped", s)))
        return (
            tuple(tagged)
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
    found = FileSystems.match([FileSystems.join(glob.escape(temp_dir), "*.csv")])[0]
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


def header_only_shards(temp_dir: str, num_shards: int) -> list[str]:
    """The output of a run that matched no file: one CSV file holding the header only
    (``num_shards`` N: N of them), written in ``temp_dir``; returns their paths."""
    count = max(1, num_shards)
    paths = [FileSystems.join(temp_dir, shard_name(i, count)) for i in range(count)]
    for path in paths:
        write_sorted_records(path, [], ROW_COLUMNS)
    return paths
