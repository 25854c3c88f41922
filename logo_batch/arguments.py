"""Command-line arguments, the way every command takes them: both spellings of an option,
values checked while the command line is parsed, parsed options turned into a call.

Pure argparse: the commands that must start without TensorFlow (``logo-batch report``)
use it too. The options several commands share are defined in :mod:`logo_batch.options`.
"""

from __future__ import annotations

import argparse
import inspect
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any


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


def number_in(
    low: float, high: float = math.inf, *, above: bool = False, below: bool = False
) -> Callable[[str], float]:
    """An argparse ``type``: a finite number in ``[low, high]`` (``nan`` and ``inf`` are
    not numbers here); ``above``: greater than ``low`` (``(low, ...``), ``below``: less
    than ``high`` (``..., high)``)."""
    if high == math.inf:
        where = f"{'>' if above else '>='} {low:g}"
    else:
        where = f"in {'(' if above else '['}{low:g}, {high:g}{')' if below else ']'}"

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        inside = (low < value if above else low <= value) and (
            value < high if below else value <= high
        )
        if not (math.isfinite(value) and inside):
            raise argparse.ArgumentTypeError(f"must be a number {where}, not {text!r}")
        return value

    return parse


def check_value(name: str, value: Any, parse: Callable[[str], Any]) -> None:
    """Raises ``ValueError`` naming the option ``--name`` when ``value`` (a number given
    to a library call, not typed) fails the command line's check ``parse``: the one
    rule for the command line and the library."""
    try:
        parse(str(value))
    except argparse.ArgumentTypeError as error:
        raise ValueError(f"--{name.replace('_', '-')} {error}") from None


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


def matching_args(target: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options named like ``target``'s parameters (a function, or a
    dataclass's fields): the one way a command turns its options into a call."""
    names = inspect.signature(target).parameters
    return {name: value for name, value in vars(args).items() if name in names}
