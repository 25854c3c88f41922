"""Round trip (issue 29): FlickrLogos-27's training set as a user's logo folder, built
with ``logo-batch dataset build``, its split sizes per brand compared with the
``flickr_logos27`` builder's. Not part of ``benchmarks.run``; it trains nothing.

The folder is what a user would have: ``photos/`` holds the training-set photos and
``boxes.csv`` their distinct boxes (the annotation's cumulative subsets deduplicated,
the zero-area RedBull box kept as a row, for the build to drop and report). The 4
training photos byte-identical to a query photo are left out (the builder knows no query
set: written, they could land in train, and the query set would test on trained
photos; ``flickr_logos27`` sends them to its crops test split). Both datasets split
70/15/15 per brand, stratified by the photo's primary brand, in other orders (other
salts), so per-brand photo counts match up to those left out and boxes per photo make
the crops counts differ a little.

    python -m benchmarks.roundtrip_own_logos \\
        --archive /work/shared/data/flickr_logos_27_dataset.tar.gz \\
        --flickr27-data-dir /work/tfds --work /tmp/roundtrip

writes ``WORK/folder`` and ``WORK/tfds/fl27_folder`` (data_dir ``WORK/tfds``) and prints
the comparison as Markdown, then the commands that train the default recipe on it and
evaluate the bundle on the FlickrLogos-27 query set.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections import Counter
from pathlib import Path

import tensorflow_datasets as tfds

from logo_batch.data import pipeline as data
from tfds_flickr27 import CROPS, DATASET_NAME, IMAGES
from tfds_flickr27.archive import extract_images, scan
from tfds_logo_folder import build_folder_dataset
from tfds_logo_folder.layout import BOXES_COLUMNS, BOXES_FILE, PHOTOS_DIR
from tfds_logo_folder.plan import SPLITS
from tfds_logo_folder.summary import summary_lines

NAME = "fl27_folder"
WEIGHTS = "/work/shared/weights/mobilenet_v2_1.0_imagenet_derived_no_top.weights.h5"


def write_folder(archive: Path, folder: Path) -> list[str]:
    """Writes the training set as ``photos/`` + ``boxes.csv``; returns the photos left
    out (byte-identical to a query photo)."""
    index = scan(archive)
    query = {index.sha256[name] for name in index.query}
    left_out = sorted(f for f in index.training.labels if index.sha256[f] in query)
    photos = sorted(set(index.training.labels) - set(left_out))
    extract_images(archive, photos, folder / PHOTOS_DIR)
    training = index.training
    boxes = sorted({*training.boxes, *training.zero_area}, key=training.line.__getitem__)
    with open(folder / BOXES_FILE, "w", newline="", encoding="utf-8") as file:
        writer = csv.writer(file)
        writer.writerow(BOXES_COLUMNS)
        writer.writerows(
            (b.filename, b.label, b.x1, b.y1, b.x2, b.y2) for b in boxes if b.filename in photos
        )
    return left_out


def label_counts(data_dir: Path, dataset: str, config: str) -> dict[str, Counter]:
    """Examples per label name in each split."""
    result = {}
    for split in SPLITS:
        info = data.load_split(data_dir, config, split, dataset=dataset)
        labels = data.split_labels(info.records)
        result[split] = Counter(info.class_names[i] for i in labels)
    return result


def own_photos(own_dir: Path) -> tuple[dict[str, str], dict[str, Counter]]:
    """Our ``images`` config: each photo's primary brand, and photos per brand and split."""
    builder = tfds.builder(f"{NAME}/{IMAGES}", data_dir=str(own_dir))
    names = builder.info.features["label"].names
    primary: dict[str, str] = {}
    counts = {}
    for split in SPLITS:
        ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        counts[split] = Counter()
        for example in tfds.as_numpy(ds):
            filename = example["filename"].decode().removeprefix(f"{PHOTOS_DIR}/")
            primary[filename] = names[example["label"]]
            counts[split][primary[filename]] += 1
    return primary, counts


def flickr27_photos(data_dir: Path, primary: dict[str, str]) -> dict[str, Counter]:
    """Photos of each split of ``flickr_logos27/crops`` per primary brand (``primary``:
    file name -> brand; photos not in it count as ``left out``)."""
    return {
        split: Counter(
            primary.get(name, "left out") for name in data.split_filenames(data_dir, CROPS, split)
        )
        for split in SPLITS
    }


def _cells(counts: dict[str, Counter], label: str) -> str:
    return "/".join(str(counts[split][label]) for split in SPLITS)


def comparison(flickr27_dir: Path, own_dir: Path) -> list[str]:
    """The Markdown table: crops and photos per brand and split, both builders."""
    ours_crops = label_counts(own_dir, NAME, CROPS)
    theirs_crops = label_counts(flickr27_dir, DATASET_NAME, CROPS)
    primary, ours_photos = own_photos(own_dir)
    theirs_photos = flickr27_photos(flickr27_dir, primary)
    split_names = "/".join(SPLITS)
    lines = [
        f"| brand | crops {DATASET_NAME} | crops {NAME} | photos {DATASET_NAME} | photos {NAME} |",
        "|---|---|---|---|---|",
    ]
    brands = sorted(set(theirs_crops["train"]) | set(ours_crops["train"]))
    for brand in [*brands, "left out"]:
        lines.append(
            f"| {brand} | {_cells(theirs_crops, brand)} | {_cells(ours_crops, brand)} "
            f"| {_cells(theirs_photos, brand)} | {_cells(ours_photos, brand)} |"
        )
    tables = (theirs_crops, ours_crops, theirs_photos, ours_photos)
    totals = ["/".join(str(sum(t[split].values())) for split in SPLITS) for t in tables]
    lines.append(f"| **all** ({split_names}) | " + " | ".join(totals) + " |")
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--archive", type=Path, required=True)
    parser.add_argument("--flickr27-data-dir", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    args = parser.parse_args(argv)
    folder, own_dir = args.work / "folder", args.work / "tfds"
    if not (folder / BOXES_FILE).is_file():
        left_out = write_folder(args.archive, folder)
        print(f"wrote {folder}; left out (byte-identical to a query photo): {left_out}")
    result = build_folder_dataset(folder, NAME, own_dir)
    print("\n".join(summary_lines(result, str(folder))))
    print()
    print("\n".join(comparison(args.flickr27_data_dir, own_dir)))
    run = args.work / "runs/folder_s42"
    recipe = (
        f"--config crops --weights {WEIGHTS} --background 2 --context 2 "
        "--steps-per-epoch 67 --mixed-precision off --seed 42"
    )
    print(
        "\nTrain the default recipe on it, evaluate on its own crops test split and on "
        "the FlickrLogos-27 query set:\n"
        f"logo-batch train --data-dir {own_dir} --dataset {NAME} {recipe} --output-dir {run}\n"
        f"logo-batch evaluate {run}/bundle --data-dir {own_dir} --dataset {NAME} "
        f"--config crops --split test --output-dir {run}/crops\n"
        f"logo-batch evaluate {run}/bundle --data-dir {args.flickr27_data_dir} "
        f"--dataset {DATASET_NAME} --config images --split test --output-dir {run}/query"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
