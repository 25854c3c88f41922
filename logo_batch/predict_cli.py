"""``logo-batch predict BUNDLE IMAGE...``: classify image files (text, CSV or JSON)."""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from logo_batch.cli_options import add_option
from logo_batch.predict import CSV_COLUMNS, Prediction, predict_files


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options in both spellings (``--top-k`` = ``--top_k``), as ``logo-batch classify``."""
    parser.add_argument("bundle", help="model bundle folder (made by logo-batch train)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    add_option(parser, "--top-k", type=int, default=3, metavar="K", help="labels per image")
    parser.add_argument("--format", choices=("text", "csv", "json"), default="text")
    add_option(
        parser,
        "--min-score",
        default=None,
        metavar="S",
        help="label 'unknown' below this top score; 'bundle' = the bundle's rejection threshold",
    )
    add_option(parser, "--batch-size", type=int, default=32, metavar="B")


def write_predictions(predictions: Sequence[Prediction], fmt: str, out: TextIO) -> None:
    """Writes predictions as aligned text, CSV (``CSV_COLUMNS``) or a JSON list."""
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(p.to_row() for p in predictions)
    elif fmt == "json":
        json.dump([dataclasses.asdict(p) for p in predictions], out, indent=2)
        out.write("\n")
    else:
        for p in predictions:
            if p.error:
                out.write(f"{p.path}: ERROR {p.error}\n")
                continue
            top = ", ".join(f"{n} {s:.3f}" for n, s in zip(p.top_labels, p.top_scores, strict=True))
            out.write(f"{p.path}: {p.label} ({p.score:.3f})  [{top}]\n")


def _min_score(value: str | None, bundle) -> float | None:
    if value is None:
        return None
    if value == "bundle":
        return bundle.metadata.rejection_threshold
    try:
        return float(value)
    except ValueError:
        raise ValueError(f"--min-score must be a number or 'bundle', not {value!r}") from None


def run(args: argparse.Namespace) -> int:
    from logo_batch.bundle import load_bundle

    try:
        bundle = load_bundle(args.bundle)
        min_score = _min_score(args.min_score, bundle)
    except (FileNotFoundError, ValueError) as error:
        print(f"logo-batch predict: error: {error}", file=sys.stderr)
        return 1
    predictions = predict_files(
        bundle, args.images, top_k=args.top_k, min_score=min_score, batch_size=args.batch_size
    )
    write_predictions(predictions, args.format, sys.stdout)
    failed = sum(bool(p.error) for p in predictions)
    if failed:
        print(f"logo-batch predict: {failed} of {len(predictions)} files failed", file=sys.stderr)
    return 1 if failed else 0
