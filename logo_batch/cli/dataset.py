"""``logo-batch dataset build FOLDER --name NAME --data-dir D``: a TFDS dataset from a
user's logo folder (:mod:`tfds_logo_folder`), with ``flickr_logos27``'s configs and
features, so ``train``, ``evaluate`` and ``quantize`` take it as ``--dataset NAME``."""

from __future__ import annotations

import argparse
import sys

import tensorflow as tf  # noqa: F401  (imported with the module: logo-batch starts it quietly)

from logo_batch import console
from tfds_logo_folder import build_folder_dataset, layout
from tfds_logo_folder.summary import summary_lines


def _fractions(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r}: three fractions train,validation,test, e.g. 0.7,0.15,0.15"
        ) from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = actions.add_parser(
        "build",
        help="build NAME/images and NAME/crops from a logo folder",
        description="Builds the TFDS dataset NAME (configs images and crops) in the data "
        "dir from FOLDER, and prints what it skipped and why.",
        epilog=layout.__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    build.add_argument(
        "folder", metavar="FOLDER", help="crops/<Brand>/, photos/ + boxes.csv, none/"
    )
    build.add_argument("--name", required=True, help="the dataset's name (snake_case)")
    build.add_argument("--data-dir", required=True, help="TFDS data_dir (a local folder)")
    build.add_argument(
        "--split",
        type=_fractions,
        default="0.7,0.15,0.15",
        metavar="TRAIN,VAL,TEST",
        help="fractions of each brand's images (photos and crops each) in train, validation "
        "and test (default %(default)s); none/ photos all go to test",
    )
    build.add_argument(
        "--overwrite",
        action="store_true",
        help="replace NAME when it was built from other files or fractions (the old one "
        "stays until the new one is complete)",
    )


def run(args: argparse.Namespace) -> int:
    try:
        result = build_folder_dataset(
            args.folder,
            args.name,
            args.data_dir,
            args.split,
            overwrite=args.overwrite,
            progress=console.is_verbose(),
        )
    except (FileNotFoundError, ValueError) as error:
        print(f"logo-batch dataset build: error: {error}", file=sys.stderr)
        return 1
    print("\n".join(summary_lines(result, args.folder)))
    return 0
