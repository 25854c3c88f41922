"""Benchmark 3: bulk classification, the Beam job vs its baselines.

Over a folder of at least 2,000 real images (the FlickrLogos-27 JPEGs repeated under
new names), with a bundle of the default model (MobileNetV2, 160 px, 27 classes;
untrained weights cost the same as trained ones), in the same run:

- ``predimage``: the article's loop, decode one file and call ``model.predict`` on it;
- ``beam``: ``beam_jobs.classify_images`` on the local runner, end to end (pipeline,
  worker start-up and model loading included);
- ceiling: the model alone, batched ``predict`` on tensors already in memory.

    python -m benchmarks.bench_bulk --images 2000
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchmarks.common import (
    Row,
    Section,
    extract_images,
    real_archive,
    replicate_folder,
    timed,
    verdict,
)

IMAGE_SIZE = 160
BATCH_SIZE = 32


def make_bundle(folder: Path, class_names: list[str]) -> Path:
    """A bundle of the default model with untrained weights (what the cost depends on)."""
    from logo_batch.bundle import BundleMetadata, save_bundle
    from logo_batch.models import build_model

    path = folder / f"bundle_mobilenet_v2_{IMAGE_SIZE}"
    if (path / "model.keras").is_file():
        return path
    model = build_model("mobilenet_v2", len(class_names), IMAGE_SIZE, weights="none")
    metadata = BundleMetadata(
        class_names=class_names, image_size=IMAGE_SIZE, backbone="mobilenet_v2", weights="none"
    )
    return save_bundle(model, metadata, path, export_serving=False)


def time_predimage(bundle_dir: Path, paths: list[Path]) -> float:
    """The article's ``predimage`` loop: one file, one ``model.predict`` call; seconds."""
    from logo_batch.bundle import load_bundle
    from logo_batch.preprocessing import preprocess_image_file

    model = load_bundle(bundle_dir).model
    model.predict(preprocess_image_file(paths[0], IMAGE_SIZE)[None], verbose=0)  # warm up
    start = time.perf_counter()
    for path in paths:
        model.predict(preprocess_image_file(path, IMAGE_SIZE)[None], verbose=0)
    return time.perf_counter() - start


def time_ceiling(bundle_dir: Path, paths: list[Path], count: int) -> float:
    """The model alone: batched forward passes over inputs already in memory; seconds."""
    from logo_batch.bundle import load_bundle
    from logo_batch.predict import predict_scores
    from logo_batch.preprocessing import preprocess_image_file

    bundle = load_bundle(bundle_dir)
    inputs = np.stack([preprocess_image_file(p, IMAGE_SIZE) for p in paths[: BATCH_SIZE * 4]])
    batches = [inputs[i : i + BATCH_SIZE] for i in range(0, len(inputs), BATCH_SIZE)]
    predict_scores(bundle.model, batches[0])  # warm up
    done, start = 0, time.perf_counter()
    while done < count:
        done += len(predict_scores(bundle.model, batches[(done // BATCH_SIZE) % len(batches)]))
    return time.perf_counter() - start


def time_beam(bundle_dir: Path, folder: Path, output: Path, beam_args: list[str]) -> float:
    """The Beam job end to end; seconds."""
    from beam_jobs.job import JobConfig, run_job

    config = JobConfig(input=str(folder), model=str(bundle_dir), output=str(output))
    seconds, summary = timed(lambda: run_job(config, beam_args))
    print(f"  {summary.line()}", flush=True)
    if summary.matched != summary.written:
        raise RuntimeError(f"beam: {summary.matched} matched but {summary.written} written")
    return seconds


def bench_bulk(
    archive: Path, work: Path, images: int, baseline_images: int, beam_args: list[str] = ()
) -> Section:
    """Images per second of the Beam job, the one-image loop and the model ceiling."""
    from tfds_flickr27 import CLASS_NAMES

    originals = extract_images(archive, work / "images" / archive.stem)
    folder = work / f"bulk_{images}"
    paths = replicate_folder(originals, folder, images)
    bundle = make_bundle(work, list(CLASS_NAMES))

    t_beam = time_beam(bundle, folder, work / f"bulk_{images}.csv", list(beam_args))
    loop_paths = paths[:baseline_images]
    t_loop = time_predimage(bundle, loop_paths)
    t_ceiling = time_ceiling(bundle, paths, images)
    loop = len(loop_paths) / t_loop
    beam = images / t_beam
    ceiling = images / t_ceiling
    section = Section(
        f"3. Bulk classification ({images} real JPEGs, MobileNetV2 {IMAGE_SIZE} px, "
        f"{os.cpu_count()} cores)"
    )
    section.rows = [
        Row(f"predimage loop (model.predict per image, {len(loop_paths)} images)", loop,
            "img/s", 1.0, "baseline"),
        Row("Beam job, local runner, end to end", beam, "img/s", beam / loop, "loop",
            f"{beam / ceiling:.2f} of ceiling"),
        Row("ceiling: batched predict on in-memory tensors", ceiling, "img/s", ceiling / loop,
            "loop"),
    ]  # fmt: skip
    section.targets = [
        f"target Beam >= 10x loop: {verdict(beam >= 10 * loop)} ({beam / loop:.1f}x)",
        f"target Beam >= 0.6 x ceiling: {verdict(beam >= 0.6 * ceiling)} ({beam / ceiling:.2f})",
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    """Runs this benchmark alone (``benchmarks.run`` runs all of them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--baseline-images", type=int, default=300)
    parser.add_argument("--archive", type=Path, default=real_archive())
    parser.add_argument("--work", type=Path, default=Path("/tmp/logo_batch_bench"))
    args, beam_args = parser.parse_known_args(argv)
    section = bench_bulk(args.archive, args.work, args.images, args.baseline_images, beam_args)
    print(section.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
