"""``make demo``: the whole product end to end, on a built-in default.

1. Data: the real FlickrLogos-27 archive when it can be had (``--archive PATH`` or
   ``$LOGO_BATCH_ARCHIVE``, else a download from the official URL), otherwise a
   generated archive in the same layout. It says which one it used.
2. ``tfds build`` packages it into TFRecords (configs ``crops`` and ``images``).
3. Trains the default recipe (MobileNetV2, head then fine-tuning) on ``crops`` with
   ``imagenet`` weights when they can be downloaded, else ``none`` (or ``--weights``
   / ``$LOGO_BATCH_WEIGHTS``: a weights file), sized to finish in minutes on 2 CPU cores.
4. Classifies a folder (the query-set images) with the Beam job into a CSV.
5. Prints where the CSV, plots and model are, the first CSV rows and the test accuracy.
6. Writes the run's report (``logo-batch report``: one HTML page) and prints where it is.

Run twice, it rebuilds nothing it can reuse (the TFRecords) and overwrites the rest.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

from logo_batch import cli, console
from logo_batch.arguments import whole_number

DEFAULT_OUTPUT = "demo_output"
ARCHIVE_ENV = "LOGO_BATCH_ARCHIVE"
WEIGHTS_ENV = "LOGO_BATCH_WEIGHTS"


def say(message: str) -> None:
    """Demo progress, on its own lines so it stands out from Keras and Beam logs."""
    print(f"\n[demo] {message}", flush=True)


def obtain_archive(out: Path, archive: str | None) -> tuple[Path, str]:
    """A manual dir holding the archive, and what it is ("given", "real" or "generated")."""
    from tfds_flickr27 import ARCHIVE_NAME, URL
    from tfds_flickr27.download import archive_path, link_manual_dir
    from tfds_flickr27.synthetic import write_synthetic_archive

    if archive:
        source = Path(archive).expanduser().resolve()
        if not source.is_file():
            raise FileNotFoundError(f"{source}: archive not found (from --archive/${ARCHIVE_ENV})")
        given_dir = link_manual_dir(source, out / "archive" / "given")
        say(f"data: the FlickrLogos-27 archive given at {source}")
        return given_dir, "given"
    real_dir = out / "archive" / "real"
    target = real_dir / ARCHIVE_NAME
    if target.is_file():
        say(f"data: the real FlickrLogos-27 archive downloaded earlier ({target})")
        return real_dir, "real"
    try:
        say(f"downloading {URL} ...")
        archive_path(real_dir)  # downloads to `target` (not there yet)
        say(f"data: the real FlickrLogos-27 archive, downloaded to {target}")
        return real_dir, "real"
    except OSError as error:
        generated_dir = out / "archive" / "generated"
        write_synthetic_archive(
            generated_dir / ARCHIVE_NAME, images_per_class=24, query_per_class=4, image_size=160
        )
        say(
            f"data: could not download the real archive ({error}); using a GENERATED "
            f"archive in the FlickrLogos-27 layout ({generated_dir / ARCHIVE_NAME}). "
            f"Set {ARCHIVE_ENV}=/path/to/flickr_logos_27_dataset.tar.gz to use the real one."
        )
        return generated_dir, "generated"


def fingerprint(manual_dir: Path) -> str:
    """A short id of the archive in ``manual_dir`` (resolved path, size, modification time)."""
    from tfds_flickr27 import ARCHIVE_NAME

    archive = (manual_dir / ARCHIVE_NAME).resolve()
    stat = archive.stat()
    key = f"{archive}:{stat.st_size}:{stat.st_mtime_ns}"
    return hashlib.sha256(key.encode()).hexdigest()[:10]


def tfds_build(config: str, data_dir: Path, manual_dir: Path) -> None:
    """Runs ``tfds build`` (import form) for one config; a no-op when already built."""
    from tfds_flickr27 import DATASET_NAME

    tfds = Path(sys.executable).with_name("tfds")
    command = [
        str(tfds) if tfds.exists() else "tfds", "build", DATASET_NAME,
        "--imports", "tfds_flickr27", "--config", config,
        "--data_dir", str(data_dir), "--manual_dir", str(manual_dir),
    ]  # fmt: skip
    say("$ " + " ".join(command))
    if console.is_verbose():
        subprocess.run(command, check=True)
        return
    proc = subprocess.run(command, capture_output=True, text=True)  # TFDS's logs: on failure
    if proc.returncode:
        sys.stderr.write(proc.stdout[-5000:] + proc.stderr[-10000:])
        raise subprocess.CalledProcessError(proc.returncode, command)


def choose_weights(weights: str | None, image_size: int) -> str:
    """``--weights``/env if given; else ``imagenet`` if it downloads, else ``none``."""
    from logo_batch.training.models import WeightsError, build_backbone

    if weights:
        say(f"weights: {weights}")
        return weights
    try:
        build_backbone("mobilenet_v2", image_size, "imagenet")
    except WeightsError as error:
        say(
            f"weights: ImageNet weights could not be downloaded ({error.__class__.__name__}); "
            "training from scratch with weights=none. Pass --weights FILE (or set "
            f"{WEIGHTS_ENV}) to use a weights file."
        )
        return "none"
    say("weights: imagenet")
    return "imagenet"


def extract_query_images(manual_dir: Path, folder: Path) -> int:
    """Writes the archive's query-set images (held out from training) to ``folder``."""
    from tfds_flickr27 import ARCHIVE_NAME
    from tfds_flickr27.archive import extract_images, scan

    archive = manual_dir / ARCHIVE_NAME
    if folder.exists():
        shutil.rmtree(folder)
    return len(extract_images(archive, scan(archive).query, folder))


def run_demo(args: argparse.Namespace) -> int:
    """The whole product, end to end."""
    import pandas as pd

    from logo_batch.training import TrainConfig, train
    from tfds_flickr27 import CROPS, DATASET_NAME, IMAGES

    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    manual_dir, kind = obtain_archive(out, args.archive or os.environ.get(ARCHIVE_ENV))
    data_dir = out / "tfds" / f"{kind}-{fingerprint(manual_dir)}"  # a new archive, new records
    for config in (CROPS, IMAGES):
        tfds_build(config, data_dir, manual_dir)

    weights = choose_weights(args.weights or os.environ.get(WEIGHTS_ENV), args.image_size)
    # One folder per data and recipe: a rerun finds its finished run and keeps it.
    weights_name = Path(weights).name.split(".")[0] if os.path.isfile(weights) else weights
    run_dir = (
        out
        / "runs"
        / (
            f"{data_dir.name}-{weights_name}-{args.image_size}px"
            f"-{args.epochs}+{args.fine_tune_epochs}ep"
        )
    )
    say(
        f"training on {DATASET_NAME}/{CROPS} ({kind} data) into {run_dir}\n"
        f"       the photo recipe (a background class, logo windows with context), shortened "
        f"for time: {args.image_size} px, {args.epochs} head + {args.fine_tune_epochs} "
        f"fine-tune epochs (`logo-batch train` trains 224 px, 30 feature + 12 fine-tune "
        f"epochs: docs/training.md)"
    )
    result = train(
        TrainConfig(
            data_dir=str(data_dir),
            output_dir=str(run_dir),
            config=CROPS,
            image_size=args.image_size,
            weights=weights,
            epochs=args.epochs,
            fine_tune_epochs=args.fine_tune_epochs,
            export_serving=False,
            verbose=2,
        )
    )

    folder = out / "images"
    count = extract_query_images(manual_dir, folder)
    csv_path = out / "predictions.csv"
    say(f"classifying {count} query-set images in {folder} with the Beam job")
    classify = [
        "classify", "--input", str(folder), "--model", str(result.bundle_dir),
        "--output", str(csv_path), "--progress-interval", "0",
    ]  # fmt: skip
    code = cli.main(classify)  # the Beam job, by its command's name (an app of its own)
    if code:
        say(f"the Beam job failed (exit {code}): logo-batch {' '.join(classify)}")
        return code

    test = result.metrics["test"]
    say("done. What the demo made:")
    print(f"  data           {kind} archive in {manual_dir}; TFRecords in {data_dir}")
    print(f"  model bundle   {result.bundle_dir}")
    print(f"  plots          {run_dir / 'training_curves.png'}")
    print(f"                 {run_dir / 'test_confusion_matrix.png'}")
    print(f"  metrics        {run_dir / 'metrics.json'}")
    print(f"  predictions    {csv_path}")
    print(f"  weights        {weights}")
    print(f"\n  test accuracy (crops test split): {test['accuracy']:.3f}\n")
    with pd.option_context("display.width", 160, "display.max_colwidth", 48):
        print(pd.read_csv(csv_path, keep_default_na=False).head(8).to_string(index=False))
    write_report(csv_path, out / "report.html")
    return 0


def write_report(csv_path: Path, output: Path) -> None:
    """The run's page (``logo-batch report``), and where it is."""
    from logo_batch.report.build import make_report

    written = make_report([str(csv_path)], str(output))
    say(f"report of this run: {written.path} (open it in a browser)")


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``logo-batch demo``."""
    parser.add_argument("--output-dir", default=DEFAULT_OUTPUT)
    parser.add_argument("--archive", help=f"FlickrLogos-27 archive (or ${ARCHIVE_ENV})")
    parser.add_argument("--weights", help=f"imagenet, none or a weights file (or ${WEIGHTS_ENV})")
    parser.add_argument("--image-size", type=whole_number(32), default=128)
    parser.add_argument("--epochs", type=whole_number(0), default=5, help="head-phase epochs")
    parser.add_argument("--fine-tune-epochs", type=whole_number(0), default=3)


def run(args: argparse.Namespace) -> int:
    """Entry point of ``logo-batch demo``."""
    return run_demo(args)


def main(argv: list[str] | None = None) -> int:
    """``python -m logo_batch.cli.demo``: the same as ``logo-batch demo`` (quiet, or ``-v``)."""
    return cli.main(["demo", *(sys.argv[1:] if argv is None else argv)])


if __name__ == "__main__":
    sys.exit(main())
