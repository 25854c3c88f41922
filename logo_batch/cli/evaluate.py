"""``logo-batch evaluate BUNDLE --data-dir D``: a bundle's metrics on a dataset split
(:func:`logo_batch.evaluation.evaluate.evaluate_bundle`), as JSON."""

from __future__ import annotations

import argparse
import json
import sys

from logo_batch.evaluation.evaluate import evaluate_bundle
from logo_batch.options import add_precision_option, matching_args
from tfds_flickr27 import CONFIG_NAMES, DATASET_NAME, IMAGES


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("bundle", help="model bundle folder (made by logo-batch train)")
    parser.add_argument("--data-dir", required=True, help="TFDS data_dir with the dataset")
    parser.add_argument("--config", default=IMAGES, choices=CONFIG_NAMES)
    parser.add_argument("--split", default="test")
    parser.add_argument("--dataset", default=DATASET_NAME, help=argparse.SUPPRESS)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument(
        "--threshold", type=float, default=None, help="rejection threshold (default: the bundle's)"
    )
    parser.add_argument(
        "--output-dir",
        default=None,
        help="also write metrics JSON and plots (per-class CSV and confusion matrix; "
        "whole photos: the rejection trade-off)",
    )
    parser.add_argument(
        "--mode",
        choices=("auto", "whole", "single"),
        default="auto",
        help="whole: photos scored over windows; single: each example resized whole; "
        "auto: whole for --config images with a bundle that learned a background class",
    )
    add_precision_option(parser)


def run(args: argparse.Namespace) -> int:
    try:
        metrics = evaluate_bundle(args.bundle, **matching_args(evaluate_bundle, args))
    except (FileNotFoundError, ValueError) as error:
        print(f"logo-batch evaluate: error: {error}", file=sys.stderr)
        return 1
    print(json.dumps(metrics, indent=2))
    return 0
