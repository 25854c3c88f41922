"""One definition per command-line option the commands share.

``logo-batch predict``, ``evaluate``, ``classify`` (``python -m beam_jobs.classify_images``)
and ``train`` add the options they share from here (:meth:`Option.add_to`): each has one
name, one default, one help text and one check, made while the command line is parsed,
so a bad value is a usage error (exit 2) that names the option, in every command.

Every option takes both spellings: ``--top-k`` (the one help shows) and ``--top_k``
(:func:`add_option`).
"""

from __future__ import annotations

import argparse
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from logo_batch.inference.engines import PRECISIONS
from logo_batch.inference.predict import AUTO, BUNDLE_THRESHOLD, MODES
from logo_batch.inference.preprocessing import DEFAULT_MAX_PIXELS


def spellings(name: str) -> list[str]:
    """``--top-k`` -> ``["--top-k", "--top_k"]`` (the given spelling first)."""
    if not name.startswith("--"):
        return [name]
    body = name[2:]
    other = "--" + (body.replace("-", "_") if "-" in body else body.replace("_", "-"))
    return [name] if other == name else [name, other]


def add_option(
    parser: argparse.ArgumentParser, name: str, *, aliases: Sequence[str] = (), **kwargs
) -> argparse.Action:
    """``parser.add_argument(name, **kwargs)``; its other spelling (``--top_k`` for
    ``--top-k``) and ``aliases`` are accepted as the same option, not shown in help.

    ``dest`` is the underscore form, so ``args.top_k`` holds ``--top-k`` and
    ``--top_k`` alike.
    """
    kwargs.setdefault("dest", name.lstrip("-").replace("-", "_"))
    action = parser.add_argument(name, **kwargs)
    for alias in [*spellings(name)[1:], *aliases]:
        # argparse looks every option string up in this table (abbreviations too); an
        # alias there is parsed as `action`, and help lists action.option_strings only.
        table = parser._option_string_actions  # noqa: SLF001
        if alias in table:
            raise ValueError(f"{alias}: already an option of {parser.prog}")
        table[alias] = action
    return action


def whole_number(minimum: int) -> Callable[[str], int]:
    """An argparse ``type``: a whole number of at least ``minimum``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = minimum - 1
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be a whole number >= {minimum}, not {text!r}")
        return value

    return parse


def number_in(low: float, high: float = math.inf) -> Callable[[str], float]:
    """An argparse ``type``: a number in ``[low, high]`` (``nan`` is not one)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not low <= value <= high:
            where = f">= {low:g}" if high == math.inf else f"in [{low:g}, {high:g}]"
            raise argparse.ArgumentTypeError(f"must be a number {where}, not {text!r}")
        return value

    return parse


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


@dataclass(frozen=True)
class Option:
    """One command-line option: its name (the hyphen spelling), default, check and help."""

    name: str
    help: str
    default: Any = None
    type: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    metavar: str | None = None

    def add_to(
        self, parser: argparse.ArgumentParser, *, aliases: Sequence[str] = (), help: str = ""
    ) -> argparse.Action:
        """Adds the option to ``parser`` (``help``: a command's own words, where the
        option means something else there, e.g. ``train --batch-size``)."""
        kwargs: dict[str, Any] = {"default": self.default, "help": help or self.help}
        for key in ("type", "choices", "metavar"):
            if getattr(self, key) is not None:
                kwargs[key] = getattr(self, key)
        return add_option(parser, self.name, aliases=aliases, **kwargs)


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


def matching_args(target: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options named like ``target``'s parameters (a function, or a
    dataclass's fields): the one way a command turns its options into a call."""
    names = inspect.signature(target).parameters
    return {name: value for name, value in vars(args).items() if name in names}
