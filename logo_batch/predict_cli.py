"""``logo-batch predict BUNDLE IMAGE...``: classify image files (text, CSV or JSON).

``--mode whole`` classifies each photo through a grid of windows
(:mod:`logo_batch.whole_photo`), ``--mode single`` resizes each file whole to one
input; ``auto`` (the default) is whole for a bundle with a background class.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from logo_batch.cli_options import add_option, add_precision_option
from logo_batch.predict import (
    MODES,
    Prediction,
    effective_min_score,
    predict_files,
    resolve_mode,
    with_precision,
)
from logo_batch.result_csv import CSV_COLUMNS


def add_mode_option(parser: argparse.ArgumentParser) -> None:
    """``--mode auto|whole|single``, as ``logo-batch predict`` and ``classify`` take it."""
    add_option(
        parser,
        "--mode",
        choices=MODES,
        default="auto",
        help="whole: each photo through a grid of 14 windows (logos small or absent); "
        "single: each file resized whole (logo crops); auto (default): whole for a "
        "bundle with a background class, else single",
    )


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
        help="below this top score the label is 'none' (whole mode, a bundle with a "
        "background class) or 'unknown'; 'bundle' = the bundle's rejection threshold "
        "(the default in whole mode)",
    )
    add_mode_option(parser)
    add_option(
        parser,
        "--batch-size",
        type=int,
        default=32,
        metavar="B",
        help="model inputs per model call (files in single mode, windows in whole mode)",
    )
    add_precision_option(parser)


def write_predictions(predictions: Sequence[Prediction], fmt: str, out: TextIO) -> None:
    """Writes predictions as aligned text, CSV
    (:data:`~logo_batch.result_csv.CSV_COLUMNS`) or a JSON list."""
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
            box = "" if p.box is None else "  box " + " ".join(map(str, p.box))
            out.write(f"{p.path}: {p.label} ({p.score:.3f})  [{top}]{box}\n")


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
        if args.batch_size < 1:
            raise ValueError(f"--batch-size must be at least 1, not {args.batch_size}")
        bundle = load_bundle(args.bundle)
        mode = resolve_mode(args.mode, bundle.metadata)
        min_score = effective_min_score(_min_score(args.min_score, bundle), mode, bundle.metadata)
        bundle, precision = with_precision(bundle, args.precision)
    except (FileNotFoundError, ValueError) as error:
        print(f"logo-batch predict: error: {error}", file=sys.stderr)
        return 1
    predictions = predict_files(
        bundle,
        args.images,
        top_k=args.top_k,
        min_score=min_score,
        batch_size=args.batch_size,
        mode=mode,
    )
    if precision != "float32":
        print(f"logo-batch predict: the model ran in {precision}", file=sys.stderr)
    write_predictions(predictions, args.format, sys.stdout)
    failed = sum(bool(p.error) for p in predictions)
    if failed:
        print(f"logo-batch predict: {failed} of {len(predictions)} files failed", file=sys.stderr)
    return 1 if failed else 0
