"""``logo-batch report RESULTS --output report.html``: a bulk run as a page to look at."""

from __future__ import annotations

import argparse
import sys

from logo_batch.arguments import add_option, number_in, whole_number
from logo_batch.report.build import ReportOptions, make_report
from logo_batch.report.sampling import BAND_SIZE, ERROR_PATHS, SAMPLES_PER_BRAND
from logo_batch.report.thumbnails import THUMBNAIL_SIZE


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options in both spellings (``--samples-per-brand`` = ``--samples_per_brand``)."""
    parser.add_argument(
        "results",
        nargs="+",
        metavar="RESULTS",
        help="the run's results: its --output CSV name (its shards NAME-NNNNN-of-NNNNN.csv "
        "are found) or a glob",
    )
    parser.add_argument(
        "--output", help="the HTML file to write (default: RESULTS' name, .report.html)"
    )
    add_option(
        parser,
        "--samples-per-brand",
        type=whole_number(0),
        default=SAMPLES_PER_BRAND,
        metavar="N",
        help=f"photos per brand in its contact sheet (default {SAMPLES_PER_BRAND})",
    )
    add_option(
        parser,
        "--band",
        type=whole_number(0),
        default=BAND_SIZE,
        metavar="N",
        help=f"photos on each side of the threshold (default {BAND_SIZE})",
    )
    add_option(
        parser,
        "--error-paths",
        type=whole_number(0),
        default=ERROR_PATHS,
        metavar="M",
        help=f"paths shown per error reason (default {ERROR_PATHS})",
    )
    add_option(
        parser,
        "--min-score",
        type=number_in(0.0, 1.0),
        default=None,
        metavar="S",
        help="the threshold the band is drawn around (default: the manifest's "
        "settings.min_score, else the lowest score accepted in whole mode)",
    )
    parser.add_argument(
        "--manifest", help="the run's manifest (default: RESULTS' name, .manifest.json)"
    )
    add_option(
        parser,
        "--thumbnail-size",
        type=whole_number(16),
        default=THUMBNAIL_SIZE,
        metavar="PX",
        help=f"longest side of a thumbnail (default {THUMBNAIL_SIZE})",
    )
    parser.add_argument("--title", default="", help="the page's title")


def run(args: argparse.Namespace) -> int:
    options = ReportOptions(
        samples_per_brand=args.samples_per_brand,
        band_size=args.band,
        error_paths=args.error_paths,
        min_score=args.min_score,
        manifest=args.manifest,
        thumbnail_size=args.thumbnail_size,
        title=args.title,
    )
    try:
        written = make_report(args.results, args.output, options)
    except (OSError, ValueError) as error:
        print(f"logo-batch report: error: {error}", file=sys.stderr)
        return 1
    print(
        f"report: {written.path} ({written.rows:,} rows from {len(written.files)} file(s), "
        f"{written.thumbnails} thumbnails)"
    )
    return 0
