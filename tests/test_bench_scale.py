"""The scale benchmark's arithmetic: merge passes, the growth it extrapolates, the table."""

from __future__ import annotations

from benchmarks import scale_estimates
from benchmarks.scale_estimates import Listing, Merge, Point


def test_merge_passes_follow_the_fan_in():
    assert [scale_estimates.merge_passes(n) for n in (1, 64, 65, 4096, 4097, 262_144, 262_145)] == [
        0, 0, 1, 1, 2, 2, 3,
    ]  # fmt: skip


def test_estimates_extrapolate_the_growth_between_the_two_largest_sizes():
    mib = scale_estimates.MiB
    points = [
        Point(1_000, 10.0, 1, 800 * mib, 800 * mib),
        Point(100_000, 60.0, 10, 810 * mib, 820 * mib),  # a partition's unit filling up
        Point(200_000, 110.0, 20, 810 * mib, 820 * mib + 200_000),  # then 2 B a file
    ]
    assert scale_estimates.growth_per_file(points, "driver") == 0
    assert scale_estimates.growth_per_file(points, "worker") == 2.0
    lines = scale_estimates.estimate_lines(
        {"dask": points}, Listing(200_000, 2.0, 4.0), Merge(200_000, 2.0, 30_000_000), 4 * 10**9
    )
    assert "from 100,000 to 200,000 files" in lines[0] and "150 bytes a row" in lines[0]
    ten_million = next(line for line in lines if line.startswith("| 10,000,000 | dask"))
    assert "| 0.8 GiB (0 B/file) | 0.8 GiB (2 B/file) |" in ten_million
    assert "| 1 min 40 s + 1 min 40 s | 1,000 |" in ten_million  # plan, then units on 2 workers
    assert "+3 min 20 s, 1 pass(es), 2 GB |" in ten_million  # 1,000 files: one pass
