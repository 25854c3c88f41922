"""Whole-photo mode vs single mode: images per second of the Beam job, in the same run.

Over generated 400x300 JPEGs, with a MobileNetV2 224 px bundle of 27 brands plus the
background class ``none`` (untrained weights cost the same as trained ones), the Beam
job on the local runner (one worker process per core) is run once in single mode
(one model input per photo) and once in whole mode (14 windows per photo). The work
per photo grows 14x in the model; the figures say what that costs end to end.

    python -m benchmarks.bench_whole_photo            # 200 images
    python -m benchmarks.bench_whole_photo --quick    # 40 images
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import numpy as np

from benchmarks.common import timed

IMAGE_SIZE = 224
WIDTH, HEIGHT = 400, 300
WORK = Path("/tmp/logo_batch_bench_whole_photo")


def make_photos(folder: Path, count: int) -> list[Path]:
    """``count`` 400x300 JPEGs: smooth gradients, noise and a few blocks (made once)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"photo_{i:04d}.jpg" for i in range(count)]
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    for i, path in enumerate(paths):
        if path.is_file():
            continue
        base = rng.integers(0, 256, 3)
        image = (base + (x[..., None] * 0.3 + y[..., None] * 0.2) * (1 + i % 3)) % 256
        image = image + rng.normal(0, 12, image.shape)
        for _ in range(3):
            x0, y0 = rng.integers(0, WIDTH - 60), rng.integers(0, HEIGHT - 40)
            image[y0 : y0 + 40, x0 : x0 + 60] = rng.integers(0, 256, 3)
        Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(path, quality=90)
    return paths


def make_bundle(folder: Path) -> Path:
    """MobileNetV2 224 px, 27 brands + ``none`` (the background class), untrained."""
    from logo_batch.bundle import BundleMetadata, save_bundle
    from logo_batch.models import build_model
    from tfds_flickr27 import CLASS_NAMES

    path = folder / f"bundle_mobilenet_v2_{IMAGE_SIZE}_background"
    if (path / "model.keras").is_file():
        return path
    class_names = [*CLASS_NAMES, "none"]
    model = build_model("mobilenet_v2", len(class_names), IMAGE_SIZE, "none")
    metadata = BundleMetadata(
        class_names=class_names,
        image_size=IMAGE_SIZE,
        backbone="mobilenet_v2",
        weights="none",
        background_class="none",
    )
    return save_bundle(model, metadata, path, export_serving=False)


def time_job(bundle: Path, folder: Path, output: Path, mode: str, beam_args) -> float:
    """The Beam job end to end in ``mode`` (worker start-up, model loads included)."""
    from beam_jobs.job import JobConfig, run_job

    config = JobConfig(input=str(folder), model=str(bundle), output=str(output), mode=mode)
    seconds, summary = timed(lambda: run_job(config, list(beam_args), quiet=True))
    print(f"  {summary.line()}", flush=True)
    if summary.matched != summary.written or summary.failed:
        raise RuntimeError(f"{mode}: {summary.matched} matched, {summary.written} written")
    return seconds


def run(quick: bool, beam_args=()) -> dict:
    """Both modes on the same photos; returns and prints images/s and their ratio."""
    count = 40 if quick else 200
    folder = WORK / f"photos_{count}"
    make_photos(folder, count)
    bundle = make_bundle(WORK)
    seconds = {
        mode: time_job(bundle, folder, WORK / f"{mode}_{count}.csv", mode, beam_args)
        for mode in ("single", "whole")
    }
    single, whole = count / seconds["single"], count / seconds["whole"]
    result = {
        "images": count,
        "cores": os.cpu_count(),
        "single_images_per_s": single,
        "whole_images_per_s": whole,
        "whole_over_single": whole / single,
        "whole_windows_per_s": whole * 14,
        "whole_windows_over_single_images": whole * 14 / single,
    }
    print(
        f"Beam job, {count} generated {WIDTH}x{HEIGHT} JPEGs, MobileNetV2 {IMAGE_SIZE} px, "
        f"{os.cpu_count()} cores, local runner:\n"
        f"  single mode {single:.2f} img/s, whole mode {whole:.2f} img/s "
        f"(ratio whole/single {whole / single:.3f}; 1/14 = {1 / 14:.3f})\n"
        f"  whole mode {whole * 14:.1f} windows/s = {whole * 14 / single:.2f}x single "
        f"mode's inputs/s"
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 images instead of 200")
    args, beam_args = parser.parse_known_args(argv)
    run(args.quick, beam_args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
