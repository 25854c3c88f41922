"""Runs every benchmark, prints a table and writes ``benchmarks/RESULTS.md``.

    python -m benchmarks.run            # full run (about 45-60 minutes on 2 cores)
    python -m benchmarks.run --quick    # a few minutes, smaller sizes
    python -m benchmarks.run --only 1,3 # some of them

Data: ``--archive``, else the real FlickrLogos-27 archive at ``../shared/data`` when it
exists, else a generated archive. Every figure is reported with its baseline measured
in the same run: times on shared machines are noisy, ratios much less so.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

from benchmarks.common import (
    REPO,
    Section,
    data_source,
    extract_images,
    gpu_summary,
    replicate_archive,
    replicate_folder,
)

RESULTS = REPO / "benchmarks" / "RESULTS.md"
ALL = "1,2,3,4,5,6,7,8,9"


def machine() -> str:
    """Cores, memory, CPU, GPUs and library versions, for the results header."""
    import apache_beam
    import keras
    import psutil
    import tensorflow as tf

    from logo_batch.inference.cpu import cpu_features
    from tfds_flickr27.parallel import cpu_count

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory = psutil.virtual_memory().total / 2**30
    return (
        f"{cpu_count()} cores ({cpu}: {cpu_features().describe()}), {memory:.0f} GiB RAM, "
        f"{gpu_summary()}; Python "
        f"{platform.python_version()}, TensorFlow {tf.__version__}, Keras {keras.__version__}, "
        f"Beam {apache_beam.__version__}"
    )


def section_number(markdown: str) -> int | None:
    """The number of a section's ``### N. title`` heading."""
    match = re.match(r"### (\d+)\.", markdown)
    return int(match.group(1)) if match else None


def merge_results(old: str, sections: list[Section], command: str, date: str) -> str:
    """``old`` RESULTS.md with the sections of the same number replaced by ``sections``
    (each stamped with the command and date that measured it), new ones added in order."""
    header, *chunks = re.split(r"(?m)^(?=### )", old)
    by_number = {section_number(chunk): chunk for chunk in chunks}
    for section in sections:
        stamp = f"\n(measured by `{command}`, {date})\n"
        by_number[section_number(section.markdown())] = section.markdown() + stamp + "\n"
    ordered = sorted(n for n in by_number if n is not None)
    return header + "".join(by_number[n] for n in ordered)


def write_results(
    sections: list[Section], command: str, data: str, started: float, partial: bool = False
) -> None:
    """Writes RESULTS.md whole: command, date, machine, then every section; a ``partial``
    run (``--only``) replaces just its own sections of the recorded file. What the
    figures mean and what bounds them is docs/performance.md, written by hand."""
    minutes = (time.time() - started) / 60
    if partial and RESULTS.exists():
        date = (
            f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {minutes:.0f} min, "
            f"on {machine()}"
        )  # a partial run may run on another machine than the header's
        write_atomically(RESULTS, merge_results(RESULTS.read_text(), sections, command, date))
        return
    lines = [
        "# Benchmark results",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC ({minutes:.0f} min)",
        f"- machine: {machine()}",
        f"- data: {data}",
        "",
        "Each ratio compares with a baseline measured in the same run. The machine is",
        "shared and noisy: read the ratios, not the absolute figures. What each section",
        "measures and what bounds each figure: docs/performance.md.",
        "",
    ]
    lines += [section.markdown() for section in sections]
    write_atomically(RESULTS, "\n".join(lines))


def write_atomically(path: Path, text: str) -> None:
    """``path`` holds ``text`` or what it held before, never a half-written file."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text)
    partial.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sizes, a few minutes")
    parser.add_argument("--archive", help="FlickrLogos-27 archive (default: real, else generated)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/logo_batch_bench"))
    parser.add_argument("--only", default=ALL, help="comma-separated benchmark numbers")
    parser.add_argument(
        "--bundle",
        type=Path,
        help="a trained photo-recipe bundle, prepared by logo-batch quantize (6: accuracy "
        "rows; 8: whole mode with its cascade; 9: engines on its model)",
    )
    parser.add_argument(
        "--no-write",
        action="store_true",
        help="do not write RESULTS.md (--quick never writes it: a quick run must not "
        "replace the recorded full run)",
    )
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    only = {int(n) for n in args.only.split(",")}
    started = time.time()

    from tfds_flickr27 import ARCHIVE_NAME, CONFIG_NAMES, CROPS, IMAGES, build_dataset
    from tfds_flickr27.download import link_manual_dir
    from tfds_flickr27.synthetic import write_synthetic_archive

    work = args.work
    archive, kind = data_source(args.archive)
    if kind == "generated":
        archive = write_synthetic_archive(
            work / "generated" / ARCHIVE_NAME, images_per_class=30, image_size=400
        )
    manual = link_manual_dir(archive, work / f"manual_{kind.split()[0]}")
    data_dir = work / "tfds" / kind.split()[0]
    build_dataset(IMAGES, data_dir, manual)
    image_dir = work / "images" / kind.split()[0]
    originals = extract_images(archive, image_dir)
    image_size = 128  # the article's input size
    epochs = 2 if args.quick else 4
    print(f"benchmarks: data = {kind} ({archive}), work = {work}", flush=True)
    print(f"machine: {machine()}", flush=True)

    sections: list[Section] = []

    def report(section: Section) -> None:
        sections.append(section)
        print(section.text(), flush=True)

    if 1 in only:
        from benchmarks.bench_pipeline import bench_input

        repeats = 2 if args.quick else 3
        report(bench_input(data_dir, IMAGES, image_dir, image_size, 32, epochs + 1, repeats))
    if 2 in only:
        from benchmarks.bench_feed import bench_feed

        report(
            bench_feed(
                data_dir, IMAGES, image_dir, image_size, 32, epochs, "mobilenet_v2", work / "feed"
            )
        )
    if 3 in only:
        from benchmarks.bench_bulk import bench_bulk

        count = 400 if args.quick else 2000
        report(bench_bulk(archive, work, count, 100 if args.quick else 300))
    if 4 in only:
        from benchmarks.bench_build import bench_build

        report(bench_build(archive, manual, work, CONFIG_NAMES))
    if 5 in only:
        from benchmarks.bench_bulk import make_bundle
        from benchmarks.bench_memory import bench_memory
        from tfds_flickr27 import CLASS_NAMES

        scale = 300 if args.quick else 1000
        archive4 = replicate_archive(archive, work / "x4" / ARCHIVE_NAME, 4)
        data4 = work / "tfds" / f"{kind.split()[0]}_x4"
        build_dataset(IMAGES, data4, archive4.parent)
        folders = {
            "1x": work / "mem_1x",
            "4x": work / "mem_4x",
        }
        replicate_folder(originals, folders["1x"], scale)
        replicate_folder(originals, folders["4x"], 4 * scale)
        report(
            bench_memory(
                work=work / "memory",
                data_dirs={"1x": data_dir, "4x": data4},
                folders=folders,
                bundle=make_bundle(work, list(CLASS_NAMES), 160),
                image_size=image_size,
            )
        )
    if 6 in only:
        from benchmarks.bench_devices import bench_devices

        if args.bundle is not None:  # the accuracy rows score the bundle on crops test
            build_dataset(CROPS, data_dir, manual)
        report(bench_devices(data_dir, bundle=args.bundle, quick=args.quick))
    if 7 in only:
        from benchmarks.bench_scale import FULL_SIZES, QUICK_SIZES, bench_scale

        report(bench_scale(work / "scale", QUICK_SIZES if args.quick else FULL_SIZES))
    if 8 in only:
        from benchmarks.bench_whole_photo import bench_whole_photo, query_photos

        photos = query_photos(archive, originals)
        count = 160 if args.quick else 1080
        report(bench_whole_photo(photos, work, count, bundle=args.bundle))
    if 9 in only:
        from benchmarks.bench_engines import QUERY_PHOTOS, bench_engines

        report(
            bench_engines(
                data_dir, args.bundle, work / "engines", 64 if args.quick else QUERY_PHOTOS
            )
        )

    command = "python -m benchmarks.run " + shlex.join(argv if argv is not None else sys.argv[1:])
    if not (args.no_write or args.quick):
        partial = set(only) != {int(n) for n in ALL.split(",")}
        write_results(sections, command.strip(), f"{kind} ({archive.name})", started, partial)
        print(f"\nwrote {RESULTS}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
