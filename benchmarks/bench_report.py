"""``logo-batch report`` over a large generated run: time and peak memory per size.

For each size, a run's results are generated as the Beam job writes them (shards of
10,000 rows, the job's columns): 27 brands and ``none`` in whole mode, a few error
reasons, paths spread over 64 real photos (so thumbnails are decoded and drawn) and
names that no longer exist. The command runs as its own process, as users run it;
its wall time and peak RSS are measured. Memory should not grow with the rows.

    python -m benchmarks.bench_report                        # 100,000 and 1,000,000 rows
    python -m benchmarks.bench_report --sizes 10000 --keep /tmp/x
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
from pathlib import Path

from PIL import Image

from benchmarks.common import peak_rss_of_command, python_command
from logo_batch.result_csv import ROW_COLUMNS

BRANDS = [f"Brand{i:02d}" for i in range(27)]
REASONS = ["image file is truncated", "cannot identify image file", "not a regular file"]
ROWS_PER_SHARD = 10_000


def write_photos(folder: Path, count: int = 64) -> list[Path]:
    """``count`` 500x375 JPEGs of random blocks."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    photos = []
    for i in range(count):
        image = Image.new("RGB", (10, 8), (rng.randrange(256), 90, 160))
        image.putdata([tuple(rng.randrange(256) for _ in range(3)) for _ in range(80)])
        path = folder / f"photo{i:02d}.jpg"
        image.resize((500, 375)).save(path, quality=85)
        photos.append(path)
    return photos


def _row(i: int, rng: random.Random, photos: list[Path], folder: Path) -> dict[str, str]:
    path = str(photos[i % len(photos)]) if i % 7 == 0 else f"{folder}/gone/{i:08d}.jpg"
    row = dict.fromkeys(ROW_COLUMNS, "")
    row.update(path=path, mode="whole", size="52311", fingerprint="0123456789abcdef")
    row["modified"] = "2026-12-01T10:00:00.000000Z"
    if rng.random() < 0.01:
        return {**row, "error": rng.choice(REASONS)}
    top = rng.sample(BRANDS, 5)
    scores = sorted((rng.random() for _ in top), reverse=True)
    x0, y0 = rng.randrange(300), rng.randrange(200)
    return {
        **row,
        "label": top[0] if scores[0] >= 0.5 else "none",
        "score": f"{scores[0]:.6f}",
        "top_labels": ";".join(top),
        "top_scores": ";".join(f"{s:.6f}" for s in scores),
        "box": f"{x0} {y0} {x0 + 160} {y0 + 160}",
    }


def write_results(output: Path, rows: int, photos: list[Path]) -> list[Path]:
    """``rows`` rows as shards ``STEM-NNNNN-of-NNNNN.csv`` of :data:`ROWS_PER_SHARD`."""
    rng = random.Random(rows)
    shards = max(1, -(-rows // ROWS_PER_SHARD))
    paths = []
    for shard in range(shards):
        path = output.with_name(f"{output.stem}-{shard:05d}-of-{shards:05d}.csv")
        with open(path, "w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=ROW_COLUMNS, lineterminator="\n")
            writer.writeheader()
            for i in range(shard * ROWS_PER_SHARD, min(rows, (shard + 1) * ROWS_PER_SHARD)):
                writer.writerow(_row(i, rng, photos, output.parent))
        paths.append(path)
    return paths


def bench_report(sizes: list[int], folder: Path) -> list[tuple[int, float, float]]:
    """``(rows, seconds, peak MiB)`` of ``logo-batch report`` for each size."""
    photos = write_photos(folder / "photos")
    results = []
    for rows in sizes:
        run = folder / f"run{rows}"
        run.mkdir(exist_ok=True)
        write_results(run / "results.csv", rows, photos)
        command = python_command(
            "-m", "logo_batch.cli", "report", str(run / "results.csv"),
            "--output", str(run / "report.html"),
        )  # fmt: skip
        seconds, peak, code = peak_rss_of_command(command, log=run / "report.log")
        if code:
            raise RuntimeError(f"report failed: see {run / 'report.log'}")
        results.append((rows, seconds, peak))
        print(f"{rows:>10,} rows: {seconds:6.1f} s, peak RSS {peak:6.1f} MiB", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000,1000000", help="rows, comma-separated")
    parser.add_argument("--keep", help="a folder to keep the generated runs in")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    if args.keep:
        bench_report(sizes, Path(args.keep))
    else:
        with tempfile.TemporaryDirectory(prefix="bench_report-") as folder:
            bench_report(sizes, Path(folder))
    return 0


if __name__ == "__main__":
    sys.exit(main())
