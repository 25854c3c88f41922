"""Benchmark 4: dataset build (``tfds build``) vs simply reading the archive.

In the same run, ``repeats`` times over (figures are medians; each ratio is taken within
one repeat, so a load change on a shared machine hits both sides):

- baseline: stream the outer tar.gz and the images tar.gz inside it with ``tarfile``,
  reading every member's bytes, nothing else;
- ``scan``: the builder's one pass over the archive: the same reading, plus each image's
  sha256 and decode check (Pillow header + TensorFlow decode) on one thread per core;
- ``tfds build flickr_logos27/<config>`` from scratch (``build_dataset``, what
  ``tfds build`` runs): the scan, the split plan, for ``crops`` one Pillow decode per
  image and one JPEG encode per box, and TFDS writing the TFRecords.

    python -m benchmarks.bench_build --repeats 5
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.common import Row, Section, real_archive, verdict

TARGET = 0.5  # the build's images/s over the plain read's


def read_archive(archive: Path) -> int:
    """The baseline: stream the outer and inner tarballs, reading every image's bytes."""
    images = 0
    with tarfile.open(archive, "r|gz") as outer:
        for member in outer:
            if not member.isfile():
                continue
            handle = outer.extractfile(member)
            if member.name.endswith("_images.tar.gz"):
                with tarfile.open(fileobj=handle, mode="r|gz") as inner:
                    for image in inner:
                        if image.isfile():
                            inner.extractfile(image).read()
                            images += 1
            else:
                handle.read()
    return images


def _timed(fn: Callable[[], object]) -> tuple[float, float, object]:
    """Runs ``fn`` once; returns (seconds, CPU seconds of this process's threads, result)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, result


def _spread(values: list[float], cpu: list[float]) -> str:
    return (
        f"median of {len(values)}: {statistics.median(values):.2f} s "
        f"({min(values):.2f}-{max(values):.2f}), {statistics.median(cpu):.2f} CPU-s"
    )


def bench_build(
    archive: Path, manual_dir: Path, work: Path, configs: tuple[str, ...], repeats: int = 3
) -> Section:
    """Times ``build_dataset`` (what ``tfds build`` runs) for each config from scratch,
    against reading the archive, ``repeats`` times; reports medians."""
    from tfds_flickr27 import build_dataset
    from tfds_flickr27.archive import scan
    from tfds_flickr27.parallel import cpu_count

    load = os.getloadavg()[0]
    seconds: dict[str, list[float]] = {}
    cpu: dict[str, list[float]] = {}
    ratios: dict[str, list[float]] = {}
    examples: dict[str, int] = {}
    images = 0

    def measure(key: str, fn: Callable[[], object]) -> tuple[float, object]:
        t_wall, t_cpu, result = _timed(fn)
        seconds.setdefault(key, []).append(t_wall)
        cpu.setdefault(key, []).append(t_cpu)
        return t_wall, result

    for _ in range(repeats):
        t_read, images = measure("read", lambda: read_archive(archive))
        t_scan, _ = measure("scan", lambda: scan(archive))
        ratios.setdefault("scan", []).append(t_read / t_scan)
        for config in configs:
            data_dir = work / f"build_{config}"
            shutil.rmtree(data_dir, ignore_errors=True)
            t_build, builder = measure(
                config,
                lambda c=config, d=data_dir: build_dataset(c, d, manual_dir, progress=False),
            )
            examples[config] = sum(s.num_examples for s in builder.info.splits.values())
            ratios.setdefault(config, []).append(t_read / t_build)

    def rate(key: str) -> float:
        return images / statistics.median(seconds[key])

    section = Section(f"4. Dataset build ({images} images in the archive)")
    section.rows = [
        Row(
            "read the archive (stream both tarballs)",
            rate("read"),
            "img/s",
            1.0,
            "baseline",
            _spread(seconds["read"], cpu["read"]),
        ),
        Row(
            "scan: read + sha256 + decode check (one pass)",
            rate("scan"),
            "img/s",
            statistics.median(ratios["scan"]),
            "read",
            _spread(seconds["scan"], cpu["scan"]),
        ),
    ]
    for config in configs:
        section.rows.append(
            Row(
                f"tfds build flickr_logos27/{config} ({examples[config]} examples)",
                rate(config),
                "img/s",
                statistics.median(ratios[config]),
                "read",
                _spread(seconds[config], cpu[config]),
            )
        )
    section.targets = [
        f"target build >= {TARGET}x read ({config}): "
        f"{verdict(statistics.median(ratios[config]) >= TARGET)}"
        for config in configs
    ]
    section.notes = [
        f"{cpu_count()} cores, load average {load:.1f} at the start (shared machine). "
        "CPU-s: CPU time of all the process's threads (the work, whatever the load). "
        "Every image is decode-checked (TensorFlow at 1/8 scale, Pillow's header); `crops` "
        "also decodes each boxed image with Pillow and encodes one JPEG per box."
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    """Runs this benchmark alone (``benchmarks.run`` runs all of them)."""
    from tfds_flickr27 import CONFIG_NAMES
    from tfds_flickr27.download import link_manual_dir

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, default=real_archive())
    parser.add_argument("--work", type=Path, default=Path("/tmp/logo_batch_bench"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    manual = link_manual_dir(args.archive, args.work / "manual_build")
    section = bench_build(args.archive, manual, args.work, CONFIG_NAMES, args.repeats)
    print(section.markdown())
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    sys.exit(main())
