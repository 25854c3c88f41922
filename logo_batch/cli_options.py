"""Command-line option spellings shared by ``logo-batch predict``, ``logo-batch
classify`` and ``python -m beam_jobs.classify_images``.

Every option of ours takes both spellings, ``--top-k`` and ``--top_k``
(:func:`add_option`). The Beam job passes the options that are not ours to Beam;
:func:`unknown_beam_options` finds those that are not Beam pipeline options either,
which are an error (Beam itself only logs an easily missed warning and ignores them).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

# Runners whose options live in a module Beam does not import by itself.
_RUNNER_OPTION_MODULES = {
    "dask": "apache_beam.runners.dask.dask_runner",
    "daskrunner": "apache_beam.runners.dask.dask_runner",
    "apache_beam.runners.dask.dask_runner.daskrunner": "apache_beam.runners.dask.dask_runner",
}


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


def _beam_parser(args: Sequence[str]) -> argparse.ArgumentParser:
    """An argument parser holding every Beam pipeline option (as Beam builds it)."""
    from apache_beam.options.pipeline_options import PipelineOptions, _BeamArgumentParser

    runner = None
    for index, arg in enumerate(args):
        if arg == "--runner" and index + 1 < len(args):
            runner = args[index + 1]
        elif arg.startswith("--runner="):
            runner = arg.split("=", 1)[1]
    module = _RUNNER_OPTION_MODULES.get((runner or "").lower())
    if module:
        try:
            importlib.import_module(module)  # registers the runner's options
        except ImportError:
            pass
    parser = _BeamArgumentParser(allow_abbrev=False)
    classes = {}
    for cls in PipelineOptions.__subclasses__():
        classes.setdefault(str(cls), cls)
    for cls in classes.values():
        cls._add_argparse_args(parser)  # noqa: SLF001  (what PipelineOptions does)
    return parser


def unknown_beam_options(args: Sequence[str]) -> list[str]:
    """The options in ``args`` that no Beam pipeline options class defines."""
    parser = _beam_parser(args)
    _, unknown = parser.parse_known_args(list(args))
    return [arg.split("=", 1)[0] for arg in unknown if arg.startswith("-")]


def unknown_option_message(options: Sequence[str], ours: Sequence[str], beam_args=()) -> str:
    """``unrecognized arguments: ...`` with a suggestion per option where one is close."""
    known = list(ours)
    parser = _beam_parser(beam_args)
    known += [s for action in parser._actions for s in action.option_strings]  # noqa: SLF001
    hints = []
    for option in options:
        underscore = "--" + option[2:].replace("-", "_") if option.startswith("--") else option
        close = [underscore] if underscore in known else difflib.get_close_matches(option, known, 1)
        if close:
            hints.append(f"{option}: did you mean {close[0]}?")
    message = "unrecognized arguments: " + " ".join(options)
    message += " (neither an option of this command nor a Beam pipeline option)"
    return message + "".join(f"; {hint}" for hint in hints)


def matching_args(target: Callable, args: argparse.Namespace) -> dict[str, Any]:
    """The parsed options named like ``target``'s parameters (a function, or a
    dataclass's fields): the one way a command turns its options into a call."""
    names = inspect.signature(target).parameters
    return {name: value for name, value in vars(args).items() if name in names}
