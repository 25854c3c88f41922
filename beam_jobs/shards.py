"""CSV shards: how many a run writes, their names, and what a writer wrote.

Each shard writer (:mod:`beam_jobs.bundle_shards`, :mod:`beam_jobs.hash_shards`) records
what it wrote (:class:`ShardWritten`: rows, error rows, bytes); the manifest gathers
those records (:mod:`beam_jobs.manifest`) and the driver checks them, never by reading
rows again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

AUTO_SHARDS = 0
"""``--num_shards`` auto: the shard count follows the rows (:func:`shard_count`)."""
ROWS_PER_SHARD = 10_000
"""Rows per shard with auto shards (on average at most; see the module's notes)."""


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


def file_size(path: str) -> int:
    """Bytes of a file on any Beam file system (a metadata look-up, no read)."""
    return FileSystems.match([path])[0].metadata_list[0].size_in_bytes
