"""Benchmark 8: whole-photo mode vs single mode on real photos: the Beam job's photos/s.

Over the FlickrLogos-27 query photos (135 with a logo, 135 without; repeated under new
names to ``count``), with a trained bundle of the photo recipe (``--bundle``, prepared by
``logo-batch quantize``: ``model.tflite`` and the whole-photo cascade; without one, an
untrained MobileNetV2 224 px bundle with a background class, speed only and no cascade),
the Beam job on the local runner (one worker process per core) runs, in the same run:
single mode (one model input per photo; the baseline), whole mode over the full
14-window grid (the bundle without its cascade), and whole mode with the bundle's cascade
(the whole-photo window first, the grid only where it does not settle the photo). Each
runs over 32 photos and over all of them; steady state is ``(N - 32) / (t_N - t_32)``
(start-up and model loading cancel out). Windows per photo: the job's ``model_inputs``
counter over its classified photos.

Camera-size photos (:func:`camera_rows`): 40 of the query photos upscaled to 4000 px on
their long side (12 megapixels at 4:3), whole mode with the bundle's cascade in this
process, its windows cut from the full-size decode (as before 2026-12-08) and from the
decode downscaled in the DCT domain to what the grid needs (``load_photo_stack``), and
single mode on the same photos.

    python -m benchmarks.bench_whole_photo --bundle BUNDLE           # 1,080 photos
    python -m benchmarks.bench_whole_photo --bundle BUNDLE --quick   # 160 photos
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tarfile
from pathlib import Path

from benchmarks.common import (
    Row,
    Section,
    extract_images,
    real_archive,
    replicate_folder,
    runner_mode_of,
    timed,
    upscaled_photos,
)

IMAGE_SIZE = 224
WORK = Path("/tmp/logo_batch_bench")
SMALL = 32  # photos of the short run
CAMERA_SIDE = 4000  # long side of the camera-size photos, px
CAMERA_PHOTOS = 40


def query_photos(archive: Path, originals: list[Path]) -> list[Path]:
    """The query set's photos among ``originals`` (all of them for another archive)."""
    from tfds_flickr27.annotations import parse_query
    from tfds_flickr27.archive import QUERY_FILE

    try:
        with tarfile.open(archive) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith(QUERY_FILE))
            names = set(parse_query(tar.extractfile(member).read()))
    except (StopIteration, tarfile.TarError, OSError):
        return originals
    found = [path for path in originals if path.name in names]
    return found or originals


def make_bundle(folder: Path, photos: list[Path]) -> Path:
    """MobileNetV2 224 px, 27 brands + ``none`` (the background class), untrained, with
    an int8 model calibrated on the windows of 8 of ``photos`` (made once)."""
    from logo_batch.evaluation.quantize import convert_int8
    from logo_batch.inference import engines
    from logo_batch.inference.bundle import BundleMetadata, save_bundle, write_bundle_file
    from logo_batch.inference.preprocessing import load_image
    from logo_batch.inference.whole_photo import photo_stack
    from logo_batch.training.models import build_model
    from tfds_flickr27 import CLASS_NAMES

    path = folder / f"bundle_mobilenet_v2_{IMAGE_SIZE}_background"
    if (path / engines.INT8_FILE).is_file():
        return path
    class_names = [*CLASS_NAMES, "none"]
    model = build_model("mobilenet_v2", len(class_names), IMAGE_SIZE, "none")
    metadata = BundleMetadata(
        class_names=class_names,
        image_size=IMAGE_SIZE,
        backbone="mobilenet_v2",
        weights="none",
        background_class="none",
        quantization={"note": "benchmark: speed only, untrained weights"},
    )
    calibration = [
        window for p in photos[:8] for window in photo_stack(load_image(p), IMAGE_SIZE).inputs
    ]
    content = convert_int8(model, calibration)
    save_bundle(model, metadata, path, export_serving=False)
    write_bundle_file(path, engines.INT8_FILE, content)
    return path


def without_cascade(bundle: Path, work: Path) -> Path:
    """A copy of ``bundle`` whose whole-photo mode scores every window (made once)."""
    import shutil

    from logo_batch.inference.bundle import METADATA_FILE, read_metadata, write_bundle_file

    copy = work / f"{bundle.name}_full_grid"
    if not copy.is_dir():
        shutil.copytree(bundle, copy)
        metadata = dataclasses.replace(read_metadata(copy), whole_photo={})
        write_bundle_file(copy, METADATA_FILE, (metadata.to_json() + "\n").encode())
    return copy


def time_job(bundle: Path, folder: Path, output: Path, mode: str, beam_args) -> tuple[float, dict]:
    """The Beam job (this process as its driver) in ``mode``; seconds and its counters.
    Rows checked."""
    from beam_jobs.job import JobConfig, run_job

    output.unlink(missing_ok=True)
    config = JobConfig(input=str(folder), model=str(bundle), output=str(output), mode=mode)
    seconds, summary = timed(lambda: run_job(config, list(beam_args), quiet=True))
    print(f"  {summary.line()}", flush=True)
    if summary.matched != summary.written or summary.failed:
        raise RuntimeError(f"{mode}: {summary.matched} matched, {summary.written} written")
    return seconds, summary.metrics


def camera_rows(
    bundle: Path,
    photos: list[Path],
    work: Path,
    side: int = CAMERA_SIDE,
    count: int = CAMERA_PHOTOS,
) -> tuple[list[Row], str]:
    """Whole mode on ``count`` photos upscaled to ``side`` px, full-size vs
    DCT-downscaled decode, in this process; rows (photos/s, ratio to the full-size
    decode) and a note on the answers."""
    import numpy as np

    from logo_batch.inference import whole_photo
    from logo_batch.inference.engines import open_for_inference
    from logo_batch.inference.predict import background_class_of, predict_files
    from logo_batch.inference.preprocessing import load_image

    step = max(1, len(photos) // count)  # logo and no-logo photos alike
    large = upscaled_photos(photos[::step][:count], work / f"camera_{side}", side)
    loaded, engine = open_for_inference(bundle, "auto")
    size, names = loaded.image_size, loaded.class_names
    cascade = whole_photo.Cascade.of(loaded.metadata)

    def whole(stack_of) -> tuple[float, np.ndarray]:
        seconds, results = timed(lambda: list(whole_photo.score_window_stacks(
            loaded.model, (stack_of(p) for p in large), names,
            background_class_of(loaded.metadata), cascade=cascade)))  # fmt: skip
        return len(large) / seconds, np.stack([r.brand_scores for r in results])

    full, full_scores = whole(lambda p: whole_photo.photo_stack(load_image(p), size))
    dct, dct_scores = whole(lambda p: whole_photo.load_photo_stack(p, size))
    single_seconds, _ = timed(lambda: predict_files(loaded, [str(p) for p in large], mode="single"))
    single = len(large) / single_seconds
    what = f"{len(large)} query photos at {side} px, {engine}, one process"
    rows = [
        Row(f"{what}: whole mode, windows from the full-size decode (before)", full,
            "photos/s", 1.0, "baseline"),
        Row(f"{what}: whole mode, windows from the DCT-downscaled decode", dct, "photos/s",
            dct / full, "full-size decode", f"{dct / single:.2f}x single mode"),
        Row(f"{what}: single mode", single, "photos/s", single / full, "full-size decode"),
    ]  # fmt: skip
    same = int((full_scores.argmax(1) == dct_scores.argmax(1)).sum())
    note = (
        f"Camera-size photos: the two decodes name the same top brand on {same} of "
        f"{len(large)} photos; brand scores differ by at most "
        f"{np.abs(full_scores - dct_scores).max():.3f}."
    )
    return rows, note


def bench_whole_photo(
    photos: list[Path], work: Path, count: int, beam_args=(), bundle: Path | None = None
) -> Section:
    """Single mode, whole mode over the full grid, whole mode with the cascade: steady
    photos/s on the same photos, ratios to single mode."""
    from logo_batch.inference.bundle import read_metadata
    from logo_batch.inference.whole_photo import Cascade
    from tfds_flickr27.parallel import cpu_count

    folders = (work / f"whole_photo_{SMALL}", work / f"whole_photo_{count}")
    replicate_folder(photos, folders[0], SMALL)
    replicate_folder(photos, folders[1], count)
    trained = bundle is not None
    bundle = bundle if trained else make_bundle(work, sorted(folders[1].iterdir()))
    runs = {
        "single mode": (bundle, "single"),
        "whole mode, full grid": (without_cascade(bundle, work), "whole"),
    }
    cascade = Cascade.of(read_metadata(bundle))
    if cascade is not None:
        runs["whole mode, cascade"] = (bundle, "whole")
    outputs = work / "whole_photo_out"
    outputs.mkdir(parents=True, exist_ok=True)
    steady, inputs = {}, {}
    for name, (path, mode) in runs.items():
        same_runner = [*beam_args, *runner_mode_of(count, beam_args)]
        small, _ = time_job(path, folders[0], outputs / "small.csv", mode, same_runner)
        full, counters = time_job(path, folders[1], outputs / "full.csv", mode, beam_args)
        steady[name] = (count - SMALL) / max(full - small, 1e-9)
        inputs[name] = counters.get("model_inputs", 0) / max(
            counters.get("images_classified", 1), 1
        )
    base = steady["single mode"]
    what = "a trained photo-recipe bundle" if trained else "an untrained bundle (speed only)"
    section = Section(
        f"8. Whole-photo mode vs single mode, Beam job ({count} real query photos, "
        f"MobileNetV2 {IMAGE_SIZE} px + background class, {what}, {cpu_count()} cores)"
    )
    for name, rate in steady.items():
        section.rows.append(
            Row(f"{name}, steady state", rate, "photos/s", rate / base, "single mode",
                f"{inputs[name]:.2f} model inputs per photo")
        )  # fmt: skip
    best = steady.get("whole mode, cascade", steady["whole mode, full grid"])
    section.targets = [
        f"target whole mode >= 0.5x single mode: {'met' if best >= 0.5 * base else 'NOT met'} "
        f"({best / base:.2f}x; full grid {steady['whole mode, full grid'] / base:.2f}x)"
    ]
    if cascade is not None:
        section.notes = [
            f"The bundle's cascade: accept {cascade.accept:.3f}, reject {cascade.reject:.3f}."
        ]
    rows, note = camera_rows(bundle, photos, work)
    section.rows += rows
    section.notes.append(note)
    return section


def main(argv: list[str] | None = None) -> int:
    """Runs this benchmark alone (``benchmarks.run`` runs all of them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="160 photos instead of 1,080")
    parser.add_argument("--archive", type=Path, default=real_archive())
    parser.add_argument("--bundle", type=Path, help="a trained photo-recipe bundle (quantized)")
    parser.add_argument("--work", type=Path, default=WORK)
    args, beam_args = parser.parse_known_args(argv)
    originals = extract_images(args.archive, args.work / "images" / args.archive.stem)
    photos = query_photos(args.archive, originals)
    count = 160 if args.quick else 1080
    section = bench_whole_photo(photos, args.work, count, beam_args, args.bundle)
    print(section.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
