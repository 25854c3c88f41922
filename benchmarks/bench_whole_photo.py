"""Benchmark 8: whole-photo mode vs single mode, float32 and int8: the Beam job's images/s.

Over real FlickrLogos-27 photos (the archive's JPEGs, repeated under new names), with a
MobileNetV2 224 px bundle of 27 brands plus the background class ``none`` (untrained
weights cost the same as trained ones), the Beam job on the local runner (one worker
process per core, pipeline start-up and model loading included) runs four times in the
same run: single mode (one model input per photo) and whole mode (14 windows per
photo), each with the float32 model (``--precision off``) and with the bundle's int8
model (``--precision int8``, converted here, calibrated on the windows of 8 photos:
speed only). Baseline: single mode, float32.

    python -m benchmarks.bench_whole_photo            # 200 photos
    python -m benchmarks.bench_whole_photo --quick    # 40 photos
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks.common import Row, Section, extract_images, real_archive, replicate_folder, timed

IMAGE_SIZE = 224
WORK = Path("/tmp/logo_batch_bench")
RUNS = (("single", "off"), ("whole", "off"), ("single", "int8"), ("whole", "int8"))


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


def time_job(
    bundle: Path, folder: Path, output: Path, mode: str, precision: str, beam_args
) -> float:
    """The Beam job end to end in ``mode`` and ``precision``; seconds. Rows checked."""
    from beam_jobs.job import JobConfig, run_job

    config = JobConfig(
        input=str(folder), model=str(bundle), output=str(output), mode=mode, precision=precision
    )
    seconds, summary = timed(lambda: run_job(config, list(beam_args), quiet=True))
    print(f"  {precision}: {summary.line()}", flush=True)
    if summary.matched != summary.written or summary.failed:
        raise RuntimeError(f"{mode}: {summary.matched} matched, {summary.written} written")
    return seconds


def bench_whole_photo(originals: list[Path], work: Path, count: int, beam_args=()) -> Section:
    """The four runs on the same ``count`` photos: images/s, ratios to single float32."""
    from tfds_flickr27.parallel import cpu_count

    folder = work / f"whole_photo_{count}"
    photos = replicate_folder(originals, folder, count)
    bundle = make_bundle(work, photos)
    outputs = work / "whole_photo_out"
    outputs.mkdir(parents=True, exist_ok=True)
    rates = {}
    for mode, precision in RUNS:
        output = outputs / f"{mode}_{precision}_{count}.csv"
        output.unlink(missing_ok=True)
        seconds = time_job(bundle, folder, output, mode, precision, beam_args)
        rates[mode, precision] = count / seconds
    base = rates["single", "off"]
    section = Section(
        f"8. Whole-photo mode vs single mode, Beam job ({count} real photos, MobileNetV2 "
        f"{IMAGE_SIZE} px + background class, {cpu_count()} cores, local runner)"
    )
    names = {"off": "float32", "int8": "int8"}
    for mode, precision in RUNS:
        windows = 14 if mode == "whole" else 1
        rate = rates[mode, precision]
        section.rows.append(
            Row(f"{mode} mode, {names[precision]}", rate, "img/s", rate / base,
                "single float32", f"{rate * windows:.1f} model inputs/s")
        )  # fmt: skip
    whole_int8, whole = rates["whole", "int8"], rates["whole", "off"]
    section.targets = [
        f"whole mode over single mode: {whole / base:.2f}x (float32), "
        f"{whole_int8 / rates['single', 'int8']:.2f}x (int8); int8 whole mode "
        f"{whole_int8 / whole:.2f}x float32 whole mode"
    ]
    section.notes = [
        "End to end, as a user runs the job: pipeline and worker start-up, model loading, "
        "listing, decoding, 14 windows per photo in whole mode (1 in single mode), CSV. "
        "Each run writes a new output file."
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    """Runs this benchmark alone (``benchmarks.run`` runs all of them)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="40 photos instead of 200")
    parser.add_argument("--archive", type=Path, default=real_archive())
    parser.add_argument("--work", type=Path, default=WORK)
    args, beam_args = parser.parse_known_args(argv)
    originals = extract_images(args.archive, args.work / "images" / args.archive.stem)
    section = bench_whole_photo(originals, args.work, 40 if args.quick else 200, beam_args)
    print(section.text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
