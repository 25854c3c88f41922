"""``logo-batch make-synthetic``: the command-line face of :mod:`tfds_flickr27.synthetic`.

The generator itself belongs to the dataset package (it writes archives in the
FlickrLogos-27 layout); this module only parses options and prints where it wrote.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from logo_batch.arguments import whole_number


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Options of ``logo-batch make-synthetic``."""
    parser.add_argument("output", type=Path, help="archive to write, e.g. synthetic.tar.gz")
    parser.add_argument("--images-per-class", type=whole_number(2), default=8)
    parser.add_argument("--query-per-class", type=whole_number(0), default=2)
    parser.add_argument("--none-queries", type=whole_number(0), default=None)
    parser.add_argument(
        "--image-size", type=whole_number(32), default=96, help="longest side in pixels"
    )
    parser.add_argument("--seed", type=whole_number(0), default=0)


def run(args: argparse.Namespace) -> int:
    """Writes the archive and prints where it is."""
    from logo_batch.arguments import matching_args
    from tfds_flickr27.synthetic import write_synthetic_archive

    path = write_synthetic_archive(args.output, **matching_args(write_synthetic_archive, args))
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return 0
