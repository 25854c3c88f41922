"""Benchmark 4: dataset build (``tfds build``) vs simply reading the archive."""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path

from benchmarks.common import Row, Section, timed


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


def bench_build(archive: Path, manual_dir: Path, work: Path, configs: tuple[str, ...]) -> Section:
    """Times ``build_dataset`` (what ``tfds build`` runs) for each config from scratch."""
    from tfds_flickr27 import build_dataset

    t_read, images = timed(lambda: read_archive(archive))
    section = Section(f"4. Dataset build ({images} images in the archive)")
    section.rows = [
        Row(
            "read the archive (stream both tarballs)",
            images / t_read,
            "img/s",
            1.0,
            "baseline",
            f"{t_read:.1f} s",
        )
    ]
    for config in configs:
        data_dir = work / f"build_{config}"
        shutil.rmtree(data_dir, ignore_errors=True)
        t_build, builder = timed(lambda c=config, d=data_dir: build_dataset(c, d, manual_dir))
        examples = sum(s.num_examples for s in builder.info.splits.values())
        section.rows.append(
            Row(
                f"tfds build flickr_logos27/{config} ({examples} examples)",
                images / t_build,
                "img/s",
                (images / t_build) / (images / t_read),
                "read",
                f"{t_build:.1f} s",
            )
        )
    section.notes = ["No target: the ratio says what building costs over just reading."]
    return section
