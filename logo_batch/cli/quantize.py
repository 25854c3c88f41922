"""``logo-batch quantize BUNDLE --data-dir D``: add an int8 model to a bundle
(:func:`logo_batch.evaluation.quantize.quantize_bundle`), its figures as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from logo_batch.arguments import matching_args, whole_number
from logo_batch.cli.dataset_errors import run_reporting
from logo_batch.evaluation.quantize import (
    CALIBRATION_PHOTOS,
    DEFAULT_CALIBRATION,
    quantize_bundle,
)


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle folder (made by logo-batch train)")
    parser.add_argument("--data-dir", required=True, help="TFDS data_dir the bundle trained on")
    parser.add_argument(
        "--calibration",
        type=whole_number(1),
        default=DEFAULT_CALIBRATION,
        metavar="N",
        help=f"training images that calibrate the activation ranges (default "
        f"{DEFAULT_CALIBRATION}; a background bundle adds the windows of "
        f"{CALIBRATION_PHOTOS} training photos)",
    )
    parser.add_argument(
        "--dataset",
        default=None,
        metavar="NAME",
        help="TFDS dataset in --data-dir to calibrate on (default: the one the bundle "
        "trained on, as its metadata records)",
    )


def run(args: argparse.Namespace) -> int:
    figures = run_reporting(
        "quantize",
        lambda: quantize_bundle(**matching_args(quantize_bundle, args)),
        args.data_dir,
        args.dataset,
    )
    if figures is None:
        return 1
    print(json.dumps(figures, indent=2))
    if not figures["kept_accuracy"]:
        print(
            "logo-batch quantize: the int8 model lost accuracy; --precision auto keeps "
            "float32 for this bundle (--precision int8 still uses it)",
            file=sys.stderr,
        )
    return 0
