"""``logo-batch evaluate BUNDLE --data-dir D``: a bundle's metrics on a dataset split
(:func:`logo_batch.evaluation.evaluate.evaluate_bundle`), as JSON."""

from __future__ import annotations

import argparse
import json

from logo_batch.arguments import add_option, matching_args
from logo_batch.cli.dataset_errors import run_reporting
from logo_batch.evaluation.evaluate import evaluate_bundle
from logo_batch.options import BATCH_SIZE, MIN_SCORE, MODE, PRECISION
from tfds_flickr27 import CONFIG_NAMES, DATASET_NAME, IMAGES


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The shared options (:mod:`logo_batch.options`) as ``predict`` has them;
    ``--threshold`` is the old name of ``--min-score``."""
    parser.add_argument("bundle", help="model bundle folder (made by logo-batch train)")
    add_option(parser, "--data-dir", required=True, help="TFDS data_dir with the dataset")
    add_option(parser, "--config", default=IMAGES, choices=CONFIG_NAMES)
    add_option(parser, "--split", default="test")
    add_option(
        parser,
        "--dataset",
        default=DATASET_NAME,
        metavar="NAME",
        help=f"TFDS dataset in --data-dir (default {DATASET_NAME}; your own: the NAME "
        "given to logo-batch dataset build)",
    )
    MIN_SCORE.add_to(parser, aliases=("--threshold",))
    for option in (MODE, BATCH_SIZE, PRECISION):
        option.add_to(parser)
    add_option(
        parser,
        "--output-dir",
        default=None,
        help="also write metrics JSON and plots (per-class CSV and confusion matrix; "
        "whole photos: the rejection trade-off)",
    )


def run(args: argparse.Namespace) -> int:
    metrics = run_reporting(
        "evaluate",
        lambda: evaluate_bundle(args.bundle, **matching_args(evaluate_bundle, args)),
        args.data_dir,
        args.dataset,
    )
    if metrics is None:
        return 1
    print(json.dumps(metrics, indent=2))
    return 0
