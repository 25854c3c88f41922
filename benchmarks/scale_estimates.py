"""The scale benchmark's arithmetic (:mod:`benchmarks.bench_scale`): what it measured, the
growth per file between its two largest sizes, and the table that extrapolates it to 10
million and 1 billion files (memory, listing, shards, the one sorted file's merge)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ESTIMATE_SIZES = (10_000_000, 1_000_000_000)
MiB = 2**20


@dataclass
class Listing:
    """The job's local listing of a folder, in one process: the plan, then the units."""

    files: int
    plan_seconds: float
    list_seconds: float


@dataclass
class Point:
    """One runner at one size."""

    files: int
    seconds: float
    shards: int
    driver: int
    worker: int  # the largest worker peak


@dataclass
class Merge:
    """The merge ``--num_shards 1`` runs, over a run's files (one process)."""

    rows: int
    seconds: float
    bytes: int  # of the files merged

    @property
    def rate(self) -> float:
        return self.rows / self.seconds

    @property
    def bytes_per_row(self) -> float:
        return self.bytes / self.rows


def growth_points(points: Sequence[Point]) -> tuple[Point, Point]:
    """The two sizes the growth per file is taken between: the two largest (every
    partition then holds a full listing unit), or the only two."""
    return (points[-2], points[-1]) if len(points) >= 2 else (points[0], points[-1])


def growth_per_file(points: Sequence[Point], attribute: str) -> float:
    """Bytes of peak memory per file between :func:`growth_points`."""
    first, last = growth_points(points)
    if last.files == first.files:
        return 0.0
    return (getattr(last, attribute) - getattr(first, attribute)) / (last.files - first.files)


def merge_passes(files: int) -> int:
    """Passes through local scratch before the final merge of ``files`` sorted files
    (:data:`beam_jobs.sorted_csv.MERGE_FAN_IN` at a time)."""
    from beam_jobs.sorted_csv import MERGE_FAN_IN

    passes = 0
    while files > MERGE_FAN_IN:
        files = math.ceil(files / MERGE_FAN_IN)
        passes += 1
    return passes


def estimate_lines(
    results: dict[str, list[Point]],
    listing: Listing,
    merge: Merge,
    memory_limit: int,
    workers: int = 2,
) -> list[str]:
    """Driver and worker memory, listing time, shards and the one sorted file at 10
    million and 1 billion files, extrapolated linearly from the growth per file
    between the two largest sizes."""
    from beam_jobs.progress import duration
    from beam_jobs.shards import shard_count

    plan_rate = listing.files / listing.plan_seconds
    list_rate = listing.files / listing.list_seconds
    first, last = growth_points(next(iter(results.values())))
    lines = [
        f"Estimates, linear in the growth per file measured from {first.files:,} to "
        f"{last.files:,} files; listing: the plan at {plan_rate:,.0f} files/s (one process "
        f"walks an input's folders), then the units at {list_rate:,.0f} files/s per process "
        f"(one stat a file), here over {workers} workers; one sorted file (--num_shards 1): "
        f"merged at {merge.rate:,.0f} rows/s by one worker, each pass through its local "
        f"scratch folder reading and writing every row once more "
        f"({merge.bytes_per_row:,.0f} bytes a row):",
        "",
        "| files | runner | driver peak | worker peak | listing | shards "
        "| one sorted file: merge, passes, scratch |",
        "|---|---|---|---|---|---|---|",
    ]
    for count in ESTIMATE_SIZES:
        shards = shard_count(count)
        passes = merge_passes(shards)
        scratch = count * merge.bytes_per_row if passes else 0
        merged = (
            f"+{duration((passes + 1) * count / merge.rate)}, {passes} pass(es), "
            f"{scratch / 1e9:,.0f} GB"
        )
        listed = f"{duration(count / plan_rate)} + {duration(count / list_rate / workers)}"
        for runner, points in results.items():
            cells = []
            for attribute in ("driver", "worker"):
                per_file = max(0.0, growth_per_file(points, attribute))
                largest = points[-1]
                value = getattr(largest, attribute) + per_file * (count - largest.files)
                text = f"{value / 2**30:,.1f} GiB ({per_file:,.0f} B/file)"
                if runner == "dask" and attribute == "worker" and value > 0.6 * memory_limit:
                    text += "; Dask spills above 60% of --memory-limit"
                cells.append(text)
            lines.append(
                f"| {count:,} | {runner} | {cells[0]} | {cells[1]} | {listed} | {shards:,} "
                f"| {merged} |"
            )
    return lines
