"""The ``logo-batch`` command line: one subcommand per job.

Each subcommand has its module (``logo_batch.cli.NAME``; ``classify``: the Beam job's
:mod:`beam_jobs.classify_images`), which provides ``configure_parser(parser)`` and
``run(args) -> int`` and calls the library. Only the chosen command's module is
imported (by its name in :data:`COMMANDS`), so ``logo-batch --help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from logo_batch import console

VERBOSE_FLAGS = ("-v", "--verbose")
# Packages of an extra (pyproject.toml) that a command may need: the extra to install.
OPTIONAL_PACKAGES = {"apache_beam": "beam", "dask": "dask"}

COMMANDS: dict[str, tuple[str, str]] = {
    "make-synthetic": (
        "logo_batch.cli.synthetic",
        "write a small generated archive in the FlickrLogos-27 layout",
    ),
    "dataset": (
        "logo_batch.cli.dataset",
        "build a TFDS dataset from a folder of your own logos (dataset build FOLDER ...)",
    ),
    "train": ("logo_batch.cli.train", "train a logo classifier on the TFDS dataset"),
    "evaluate": ("logo_batch.cli.evaluate", "evaluate a model bundle on a dataset split"),
    "predict": ("logo_batch.cli.predict", "classify image files with a model bundle"),
    "quantize": (
        "logo_batch.cli.quantize",
        "add an int8 model to a bundle (fast inference on CPUs with int8 dot products)",
    ),
    "classify": (
        "beam_jobs.classify_images",
        "classify image folders in bulk into CSV with Apache Beam",
    ),
    "report": ("logo_batch.cli.report", "a bulk run's results as one HTML page to look at"),
    "demo": ("logo_batch.cli.demo", "run the whole product end to end on a built-in default"),
}


def _top_level_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logo-batch",
        description="Train FlickrLogos-27 logo classifiers and classify image folders in bulk.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="commands:\n"
        + "\n".join(f"  {name:<16}{summary}" for name, (_, summary) in COMMANDS.items())
        + "\n\nRun `logo-batch COMMAND --help` for a command's options; add -v (--verbose) "
        "to any command to see every log line.",
    )
    parser.add_argument("command", choices=sorted(COMMANDS), metavar="COMMAND")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``logo-batch`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    verbose = any(arg in VERBOSE_FLAGS for arg in argv)
    argv = [arg for arg in argv if arg not in VERBOSE_FLAGS]
    console.set_verbose(verbose or console.is_verbose())
    if not argv or argv[0] not in COMMANDS:
        _top_level_parser().parse_args(argv[:1] or ["--help"])
        return 2
    name, rest = argv[0], argv[1:]
    module_name, summary = COMMANDS[name]
    try:
        with console.native_stderr_captured(not console.is_verbose()):
            module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        extra = OPTIONAL_PACKAGES.get((error.name or "").split(".")[0])
        if extra is None:
            raise
        print(
            f"logo-batch {name}: needs {error.name}, which is not installed: "
            f"pip install 'logo-batch[{extra}]'",
            file=sys.stderr,
        )
        return 2
    if "tensorflow" in sys.modules:
        console.start_tensorflow_quietly()
    parser = argparse.ArgumentParser(
        prog=f"logo-batch {name}",
        description=summary,
        epilog="-v/--verbose: show every log line (TensorFlow, Beam runner).",
    )
    module.configure_parser(parser)
    args, extra = parser.parse_known_args(rest)
    if extra and not getattr(module, "ACCEPTS_EXTRA_ARGS", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.extra_args = extra
    return int(module.run(args) or 0)
