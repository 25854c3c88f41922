"""One definition per command-line option the commands share.

``logo-batch predict``, ``evaluate``, ``classify`` (``python -m beam_jobs.classify_images``)
and ``train`` add the options they share from here (:meth:`~logo_batch.arguments.Option.add_to`):
each has one name, one default, one help text and one check, made while the command line
is parsed, so a bad value is a usage error (exit 2) that names the option, in every
command. Every option takes both spellings: ``--top-k`` (the one help shows) and
``--top_k`` (:func:`~logo_batch.arguments.add_option`).
"""

from __future__ import annotations

import argparse

from logo_batch.arguments import Option, number_in, whole_number
from logo_batch.inference.engines import PRECISIONS
from logo_batch.inference.file_access import DEFAULT_MAX_BYTES
from logo_batch.inference.predict import AUTO, BUNDLE_THRESHOLD, MODES
from logo_batch.inference.preprocessing import DEFAULT_MAX_PIXELS


def min_score_value(text: str) -> float | str:
    """``--min-score``: a number in [0, 1], or ``bundle`` (the bundle's threshold)."""
    if text.strip().lower() == BUNDLE_THRESHOLD:
        return BUNDLE_THRESHOLD
    try:
        return number_in(0.0, 1.0)(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be a number in [0, 1] or '{BUNDLE_THRESHOLD}', not {text!r}"
        ) from None


MIN_SCORE = Option(
    "--min-score",
    type=min_score_value,
    metavar="S",
    help="the rejection threshold: below this top score the label is the background "
    "class (none; whole mode, a bundle with one) or unknown. A number in [0, 1], or "
    f"'{BUNDLE_THRESHOLD}': the bundle's rejection threshold (the default in whole mode; "
    "none in single mode)",
)
TOP_K = Option(
    "--top-k",
    type=whole_number(1),
    default=5,
    metavar="K",
    help="labels and scores per file (default 5)",
)
BATCH_SIZE = Option(
    "--batch-size",
    type=whole_number(1),
    default=32,
    metavar="B",
    help="model inputs per model call: images in single mode, windows in whole mode (default 32)",
)
MODE = Option(
    "--mode",
    choices=MODES,
    default=AUTO,
    help="whole: each photo through a grid of 14 windows (logos small or absent); "
    "single: each image resized whole (logo crops); auto (default): whole for a bundle "
    "with a background class unless the images are crops (evaluate --config crops), "
    "else single",
)
PRECISION = Option(
    "--precision",
    choices=PRECISIONS,
    default=AUTO,
    help="what the model computes in: int8 (the bundle's int8 model, made by "
    "logo-batch quantize), bfloat16, off (float32); auto (default): int8 when the "
    "bundle has one that kept its accuracy and this CPU has int8 dot products "
    "(AVX-512 VNNI, AVX-VNNI, AMX), else float32",
)
MAX_PIXELS = Option(
    "--max-pixels",
    type=whole_number(1),
    default=DEFAULT_MAX_PIXELS,
    metavar="P",
    help=f"refuse larger images before decoding them (default {DEFAULT_MAX_PIXELS})",
)
MAX_BYTES = Option(
    "--max-bytes",
    type=whole_number(1),
    default=DEFAULT_MAX_BYTES,
    metavar="B",
    help=f"refuse larger files from their size, before reading them (an error row "
    f"naming the size; default {DEFAULT_MAX_BYTES} = 256 MiB)",
)
