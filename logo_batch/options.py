"""Command-line option spellings shared by ``logo-batch predict``, ``logo-batch
classify`` and ``python -m beam_jobs.classify_images``.

Every option of ours takes both spellings, ``--top-k`` and ``--top_k``
(:func:`add_option`).
"""

from __future__ import annotations

import argparse
import inspect
from collections.abc import Callable
from typing import Any

from logo_batch.inference.predict import MODES


def spellings(name: str) -> list[str]:
    """``--top-k`` -> ``["--top-k", "--top_k"]`` (the given spelling first)."""
    if not name.startswith("--"):
        return [name]
    body = name[2:]
    other = "--" + (body.replace("-", "_") if "-" in body else body.replace("_", "-"))
    return [name] if other == name else [name, other]


def add_option(parser: argparse.ArgumentParser, name: str, *short: str, **kwargs):
    """``parser.add_argument`` for ``name`` in both spellings (plus short flags).

    ``dest`` is the underscore form, so ``args.top_k`` holds ``--top-k`` and
    ``--top_k`` alike.
    """
    kwargs.setdefault("dest", name.lstrip("-").replace("-", "_"))
    return parser.add_argument(*spellings(name), *short, **kwargs)


def add_precision_option(parser: argparse.ArgumentParser) -> None:
    """``--precision auto|off|bfloat16|int8``, as ``predict``, ``evaluate`` and ``classify``
    take it (:func:`logo_batch.inference.engines.resolve_inference`)."""
    add_option(
        parser,
        "--precision",
        choices=("auto", "off", "bfloat16", "int8"),
        default="auto",
        help="what the model computes in: int8 (the bundle's int8 model, made by "
        "logo-batch quantize), bfloat16, off (float32); auto (default): int8 when the "
        "bundle has one that kept its accuracy and this CPU has int8 dot products "
        "(AVX-512 VNNI, AVX-VNNI, AMX), else float32",
    )


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


def matching_args(target: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options named like ``target``'s parameters (a function, or a
    dataclass's fields): the one way a command turns its options into a call."""
    names = inspect.signature(target).parameters
    return {name: value for name, value in vars(args).items() if name in names}
