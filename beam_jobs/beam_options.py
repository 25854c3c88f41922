"""Which command-line options are Beam's.

The Beam job passes the options that are not its own to Beam;
:func:`unknown_beam_options` finds those that are not Beam pipeline options either,
which are an error (Beam itself only logs an easily missed warning and ignores them).
"""

from __future__ import annotations

import argparse
import difflib
import importlib
from collections.abc import Sequence

# Runners whose options live in a module Beam does not import by itself.
_RUNNER_OPTION_MODULES = {
    "dask": "apache_beam.runners.dask.dask_runner",
    "daskrunner": "apache_beam.runners.dask.dask_runner",
    "apache_beam.runners.dask.dask_runner.daskrunner": "apache_beam.runners.dask.dask_runner",
}


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
