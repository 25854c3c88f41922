"""The least any Beam job costs on this machine, beside which the job's start is read."""

from __future__ import annotations

from pathlib import Path

from benchmarks.common import python_command, run_command

FLOOR_PIPELINE = """
import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

options = PipelineOptions(["--direct_running_mode=in_memory"])
with beam.Pipeline(runner=FnApiRunner(), options=options) as p:
    p | beam.Create([1]) | beam.Map(lambda x: x)
"""


def beam_floor(log: Path) -> float:
    """Seconds of a process that imports Beam and runs a one-element pipeline on the
    in-process runner (what no job of ours can go under); its output to ``log``."""
    return run_command(python_command("-c", FLOOR_PIPELINE), log)
