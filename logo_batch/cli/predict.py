"""``logo-batch predict BUNDLE IMAGE...``: classify image files (text, CSV or JSON).

``--mode whole`` classifies each photo through a grid of windows
(:mod:`logo_batch.inference.whole_photo`), ``--mode single`` resizes each file whole to
one input; ``auto`` (the default) is whole for a bundle with a background class.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys
from collections.abc import Sequence
from typing import TextIO

from logo_batch.arguments import add_option
from logo_batch.inference.checks import open_checked
from logo_batch.inference.predict import (
    Prediction,
    effective_min_score,
    predict_files,
    resolve_mode,
)
from logo_batch.options import (
    BATCH_SIZE,
    MAX_BYTES,
    MAX_PIXELS,
    MIN_SCORE,
    MODE,
    PRECISION,
    TOP_K,
)
from logo_batch.result_csv import CSV_COLUMNS, escape_path


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """The shared options (:mod:`logo_batch.options`), as ``logo-batch classify`` has them."""
    parser.add_argument("bundle", help="model bundle folder (made by logo-batch train)")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files to classify")
    add_option(parser, "--format", choices=("text", "csv", "json"), default="text")
    for option in (TOP_K, MIN_SCORE, MODE, BATCH_SIZE, PRECISION, MAX_PIXELS, MAX_BYTES):
        option.add_to(parser)


def write_predictions(predictions: Sequence[Prediction], fmt: str, out: TextIO) -> None:
    """Writes predictions as aligned text, CSV
    (:data:`~logo_batch.result_csv.CSV_COLUMNS`) or a JSON list. In text and CSV a
    path is escaped as the Beam job's CSV writes it (:func:`~logo_batch.result_csv.
    escape_path`: a name that is not UTF-8 cannot be written to a UTF-8 stream as it
    is); JSON escapes it itself."""
    if fmt == "json":
        json.dump([dataclasses.asdict(p) for p in predictions], out, indent=2)
        out.write("\n")
        return
    predictions = [dataclasses.replace(p, path=escape_path(p.path)) for p in predictions]
    if fmt == "csv":
        writer = csv.DictWriter(out, fieldnames=CSV_COLUMNS, lineterminator="\n")
        writer.writeheader()
        writer.writerows(p.to_row() for p in predictions)
    else:
        for p in predictions:
            if p.error:
                out.write(f"{p.path}: ERROR {p.error}\n")
                continue
            top = ", ".join(f"{n} {s:.3f}" for n, s in zip(p.top_labels, p.top_scores, strict=True))
            box = "" if p.box is None else "  box " + " ".join(map(str, p.box))
            out.write(f"{p.path}: {p.label} ({p.score:.3f})  [{top}]{box}\n")


def run(args: argparse.Namespace) -> int:
    try:
        bundle, engine = open_checked(args.bundle, args.precision)
        mode = resolve_mode(args.mode, bundle.metadata)
        min_score = effective_min_score(args.min_score, mode, bundle.metadata)
    except (FileNotFoundError, ValueError) as error:
        print(f"logo-batch predict: error: {error}", file=sys.stderr)
        return 1
    predictions = predict_files(
        bundle,
        args.images,
        top_k=args.top_k,
        min_score=min_score,
        batch_size=args.batch_size,
        max_pixels=args.max_pixels,
        max_bytes=args.max_bytes,
        mode=mode,
    )
    print(
        f"logo-batch predict: {len(predictions)} files, {mode} mode, engine {engine}",
        file=sys.stderr,
    )
    write_predictions(predictions, args.format, sys.stdout)
    failed = sum(bool(p.error) for p in predictions)
    if failed:
        print(f"logo-batch predict: {failed} of {len(predictions)} files failed", file=sys.stderr)
    return 1 if failed else 0
