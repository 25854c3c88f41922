"""Benchmark 7: the Beam job at 1,000 to 200,000 files: memory that does not grow.

Each size is a folder of small generated JPEGs (64 distinct 32x32 pictures, hard-linked
under new names, 10,000 to a subfolder) classified by a tiny model (a 3x3 convolution and
a dense head at 24 px), so 100,000 files take minutes: what is measured is the job's own
cost per file (listing, grouping, rows, shards, the check), not the model's. For each
size and runner, in the same run:

- rows == files (the output's rows counted by reading them back), shards written;
- wall time of the job (a separate process, as users run it);
- peak RSS of the driver (the job's process) and of each worker process, sampled every
  100 ms: the local runner's SDK workers (its children), or the workers of a Dask
  cluster started with the ``dask`` command line (2 workers, 1 thread, 4 GB each), with
  Dask's statistical profiler off (:data:`DASK_WORKER_ENV`: it keeps the last 1,000
  seconds of sampled call stacks, which grows a worker with the run's time, not its
  files: the README says so);
- listing, timed in this process over the largest folder: the plan (one process walks
  the folders, ``plan_local_listing``) and the listing of its units (one stat a file,
  ``list_unit_entries``; the job spreads this over the workers);
- the merge ``--num_shards 1`` runs, over the largest run's files, and the bytes a row
  takes in them.

The baseline of each memory figure is the same process at the smallest size (the ratio
column); the target: at the largest size, within 10% of it. From the growth per file
between the two largest sizes (where every partition holds a full listing unit of
10,000 files) the notes estimate the driver's and a worker's memory, the listing time,
the shard count and the one sorted file's merge at 10 million and 1 billion files.

    python -m benchmarks.bench_scale                # 1k, 10k, 100k, 200k; local and dask
    python -m benchmarks.bench_scale --quick        # 1k, 5k, 20k
    python -m benchmarks.bench_scale --runners local --sizes 1000,50000
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchmarks.common import Row, Section, python_command, verdict
from benchmarks.scale_estimates import Listing, Merge, MiB, Point, estimate_lines

FULL_SIZES = (1_000, 10_000, 100_000, 200_000)
QUICK_SIZES = (1_000, 5_000, 20_000)
RUNNERS = ("local", "dask")
FILES_PER_FOLDER = 10_000
DISTINCT_PICTURES = 64
DASK_WORKER_ENV = {"DASK_DISTRIBUTED__WORKER__PROFILE__ENABLED": "False"}
"""Environment of the benchmark's ``dask worker`` processes (see the module's notes)."""


def make_folder(target: Path, count: int, seed: int = 0) -> Path:
    """``count`` JPEGs under ``target`` (hard links of 64 small pictures), made once."""
    done = target / ".complete"
    if done.is_file() and done.read_text() == str(count):
        return target
    from PIL import Image

    if target.exists():
        shutil.rmtree(target)
    pictures = target / ".pictures"
    pictures.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    sources = []
    for index in range(DISTINCT_PICTURES):
        path = pictures / f"p{index:02d}.jpg"
        Image.fromarray(rng.integers(0, 256, (32, 32, 3), np.uint8)).save(path, "JPEG")
        sources.append(path)
    for index in range(count):
        folder = target / f"d{index // FILES_PER_FOLDER:05d}"
        if index % FILES_PER_FOLDER == 0:
            folder.mkdir()
        os.link(sources[index % DISTINCT_PICTURES], folder / f"f{index:09d}.jpg")
    shutil.rmtree(pictures)
    done.write_text(str(count))
    return target


def tiny_bundle(folder: Path) -> Path:
    """A bundle of a tiny model (24 px, 3 classes): the job's cost, not the model's."""
    import keras

    from logo_batch.inference.bundle import BundleMetadata, save_bundle
    from logo_batch.inference.layers import ScalePixels

    path = folder / "bundle_tiny_24"
    if (path / "model.keras").is_file():
        return path
    keras.utils.set_random_seed(0)
    inputs = keras.Input((24, 24, 3), dtype="float32")
    x = ScalePixels("tf")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(3, activation="softmax")(x)
    metadata = BundleMetadata(class_names=["a", "b", "c"], image_size=24, backbone="tiny")
    return save_bundle(keras.Model(inputs, outputs), metadata, path, export_serving=False)


def listing_rate(folder: Path) -> Listing:
    """Times the job's listing of ``folder``: planning (one process walks the folders)
    and listing the units (one stat a file; spread over the workers in the job)."""
    from beam_jobs.listing import list_unit_entries, plan_local_listing

    start = time.perf_counter()
    units = list(plan_local_listing(str(folder)))
    planned = time.perf_counter()
    files = sum(1 for unit in units for _ in list_unit_entries(unit))
    return Listing(files, planned - start, time.perf_counter() - planned)


@dataclass
class Measured:
    seconds: float
    code: int
    output: str
    driver_peak: int
    worker_peaks: dict[int, int] = field(default_factory=dict)


def run_measured(command: Sequence[str], workers: Callable[[int], list[int]]) -> Measured:
    """Runs ``command``; peak RSS of its process and of each process ``workers(pid)``
    names, sampled every 100 ms."""
    import psutil

    start = time.perf_counter()
    process = subprocess.Popen(
        list(command), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    peaks: dict[int, int] = {}
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            for pid in [process.pid, *workers(process.pid)]:
                try:
                    peaks[pid] = max(peaks.get(pid, 0), psutil.Process(pid).memory_info().rss)
                except psutil.Error:
                    pass
            done.wait(0.1)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    output, _ = process.communicate()
    done.set()
    sampler.join()
    driver = peaks.pop(process.pid, 0)
    return Measured(time.perf_counter() - start, process.returncode, output, driver, peaks)


def local_workers(driver_pid: int) -> list[int]:
    """The local runner's SDK worker processes: the driver's descendants."""
    import psutil

    try:
        return [child.pid for child in psutil.Process(driver_pid).children(recursive=True)]
    except psutil.Error:
        return []


def count_rows(paths: Sequence[Path]) -> int:
    """Rows of the job's CSV files, read back (each has a header)."""
    total = 0
    for path in paths:
        with open(path, newline="", encoding="utf-8") as handle:
            total += sum(1 for _ in csv.reader(handle)) - 1
    return total


def job_command(folder: Path, bundle: Path, output: Path, runner_args: Sequence[str]) -> list:
    return python_command(
        "-m", "beam_jobs.classify_images", "--input", str(folder), "--model", str(bundle),
        "--output", str(output), "--progress_interval", "0", *runner_args,
    )  # fmt: skip


def measure(
    runner: str, folder: Path, count: int, bundle: Path, out: Path, address: str = "",
    workers: Callable[[int], list[int]] = local_workers,
) -> Point:  # fmt: skip
    """The job over ``folder`` on ``runner``; checks rows == files."""
    output = out / f"{runner}_{count}" / "rows.csv"
    if output.parent.exists():
        shutil.rmtree(output.parent)
    args = ["--runner", "DaskRunner", "--dask_client_address", address] if address else []
    measured = run_measured(job_command(folder, bundle, output, args), workers)
    if measured.code != 0:
        raise RuntimeError(f"{runner} at {count} files failed:\n{measured.output[-3000:]}")
    files = sorted(output.parent.glob("rows*.csv"))
    rows = count_rows(files)
    if rows != count:
        raise RuntimeError(f"{runner} at {count} files: {rows} rows written")
    worker = max(measured.worker_peaks.values(), default=0)
    print(f"  {runner} {count:>9,} files: {measured.seconds:7.1f} s, driver "
          f"{measured.driver_peak / MiB:6.0f} MiB, worker {worker / MiB:6.0f} MiB, "
          f"{len(files)} shards", flush=True)  # fmt: skip
    return Point(count, measured.seconds, len(files), measured.driver_peak, worker)


def merge_rate(shards: Sequence[Path], work: Path) -> Merge:
    """Times the merge ``--num_shards 1`` runs (one process) over the largest run's
    shards."""
    from beam_jobs.sorted_csv import merge_sorted_csvs
    from logo_batch.result_csv import ROW_COLUMNS

    start = time.perf_counter()
    rows, _ = merge_sorted_csvs([str(s) for s in shards], str(work / "merged.csv"), ROW_COLUMNS)
    seconds = time.perf_counter() - start
    (work / "merged.csv").unlink()
    return Merge(rows, seconds, sum(shard.stat().st_size for shard in shards))


def bench_scale(
    work: Path, sizes: Sequence[int] = FULL_SIZES, runners: Sequence[str] = RUNNERS
) -> Section:
    """Rows, time and peak memory of the job at each size, on each runner."""
    sizes = sorted(sizes)
    bundle = tiny_bundle(work)
    folders = {count: make_folder(work / f"files_{count}", count) for count in sizes}
    out = work / "out"
    results: dict[str, list[Point]] = {}
    memory_limit = 4 * 10**9
    for runner in runners:
        if runner == "local":
            results[runner] = [measure(runner, folders[n], n, bundle, out) for n in sizes]
        elif runner == "dask":
            from benchmarks.dask_cluster import dask_cluster

            points = []
            for n in sizes:  # a fresh cluster each time: each worker's peak is this size's
                with (
                    environment(DASK_WORKER_ENV),
                    dask_cluster(work / f"dask_{n}", workers=2, memory_limit="4GB") as cluster,
                ):
                    points.append(measure(
                        runner, folders[n], n, bundle, out, cluster.address,
                        lambda _: cluster.worker_pids(),
                    ))  # fmt: skip
            results[runner] = points
        else:
            raise ValueError(f"unknown runner {runner!r}: local or dask")
    listing = listing_rate(folders[sizes[-1]])
    first = next(iter(results))
    largest = sorted((out / f"{first}_{sizes[-1]}").glob("rows*.csv"))
    merge = merge_rate(largest, out)
    section = Section(
        f"7. Scale: the Beam job at {', '.join(f'{n:,}' for n in sizes)} files "
        "(small JPEGs, tiny model, 2 local SDK workers / 2 Dask workers of 4 GB)"
    )
    targets = []
    for runner, points in results.items():
        base = points[0]
        for point in points:
            label = f"{runner}, {point.files:,} files"
            section.rows.append(
                Row(f"{label}: files/s", point.files / point.seconds, "files/s",
                    note=f"rows = files; {point.shards} shard(s)")
            )  # fmt: skip
            section.rows.append(
                Row(f"{label}: driver peak RSS", point.driver / MiB, "MiB",
                    point.driver / base.driver, f"{base.files:,} files")
            )  # fmt: skip
            section.rows.append(
                Row(f"{label}: largest worker peak RSS", point.worker / MiB, "MiB",
                    point.worker / base.worker, f"{base.files:,} files")
            )  # fmt: skip
        last = points[-1]
        for what in ("driver", "worker"):
            ratio = getattr(last, what) / getattr(base, what)
            targets.append(
                f"target {runner} {what} peak at {last.files:,} within 10% of "
                f"{base.files:,}: {verdict(ratio <= 1.10)} ({ratio:.2f}x)"
            )
    section.rows.append(
        Row(f"listing of {listing.files:,} files: plan (one process)",
            listing.files / listing.plan_seconds, "files/s")
    )  # fmt: skip
    section.rows.append(
        Row(f"listing of {listing.files:,} files: units (per process)",
            listing.files / listing.list_seconds, "files/s")
    )  # fmt: skip
    section.targets = targets
    section.rows.append(
        Row(f"merge into one sorted file (--num_shards 1), {len(largest)} files", merge.rate,
            "rows/s", note=f"{merge.bytes_per_row:,.0f} bytes a row")
    )  # fmt: skip
    section.notes = ["\n".join(estimate_lines(results, listing, merge, memory_limit))]
    return section


@contextlib.contextmanager
def environment(values: dict[str, str]):
    """``values`` in ``os.environ`` while the ``with`` body runs (the processes it starts
    inherit them)."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def main(argv: list[str] | None = None) -> int:
    """Runs this benchmark alone (``python -m benchmarks.run --only 7`` runs it too)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1k, 5k, 20k files")
    parser.add_argument("--sizes", help="comma-separated file counts (default 1k, 10k, 100k, 200k)")
    parser.add_argument("--runners", default=",".join(RUNNERS), help="local, dask or both")
    parser.add_argument("--work", type=Path, default=Path("/tmp/logo_batch_bench/scale"))
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.sizes:
        sizes = [int(n) for n in args.sizes.split(",")]
    else:
        sizes = list(QUICK_SIZES if args.quick else FULL_SIZES)
    section = bench_scale(args.work, sizes, [r for r in args.runners.split(",") if r])
    print(section.text())
    print("\n" + section.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
