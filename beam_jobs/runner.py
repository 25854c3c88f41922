"""Which runner runs the job: the given ``--runner``, else a local multi-process runner."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Sequence

from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from beam_jobs.summary import METRICS_NAMESPACE
from logo_batch.inference.cpu import cpu_count

DASK_RUNNER = "beam_jobs.dask_runner.BoundedDaskRunner"
"""What ``--runner DaskRunner`` runs: Beam's Dask runner, translated for bounded memory."""
_DASK_NAMES = ("dask", "daskrunner", "apache_beam.runners.dask.dask_runner.daskrunner")


_BEAM_WORKER_MAIN = "-m apache_beam.runners.worker.sdk_worker_main"
SMALL_RUN_FILES = 512
"""Local runs over fewer inputs run in this process: on the 2-core AVX2 EPYC two worker
processes make a 32-photo run 2.3 s longer (6.0 vs 3.7 s), and a 600-photo run is
still 1.4 s shorter in one process (docs/experiments.md,
2026-12-07 "where the Beam job's start went")."""


class LocalRunner(FnApiRunner):
    """Beam's local portable runner, its worker processes started as
    :mod:`beam_jobs.sdk_worker`: they exit when the driver dies, and stay quiet.

    ``FnApiRunner`` (``direct_running_mode = multi_processing``) starts each worker
    with the shell command ``<python> -m apache_beam.runners.worker.sdk_worker_main``,
    the payload of the pipeline's subprocess environment; this runner swaps that
    command for ``<python> -m beam_jobs.sdk_worker --driver_pid <this process>``,
    which runs the same worker main.
    """

    def __init__(self, quiet: bool = False, tensorflow: bool = False):
        super().__init__()
        self.quiet = quiet
        self.tensorflow = tensorflow

    def worker_command(self) -> str:
        command = (
            f"{shlex.quote(sys.executable)} -m beam_jobs.sdk_worker --driver_pid {os.getpid()}"
        )
        if self.quiet:  # TensorFlow reads this when the worker imports it
            command = f"env TF_CPP_MIN_LOG_LEVEL=3 {command} --quiet"
            if self.tensorflow:
                command += " --tensorflow"
        return f"exec {command}"  # the shell Beam runs it with becomes the worker

    def run_via_runner_api(self, pipeline_proto, options):
        for environment in pipeline_proto.components.environments.values():
            if environment.urn == python_urns.SUBPROCESS_SDK and environment.payload.decode(
                "utf-8"
            ).endswith(_BEAM_WORKER_MAIN):
                environment.payload = self.worker_command().encode("utf-8")
        return super().run_via_runner_api(pipeline_proto, options)


def pipeline_options(
    pipeline_args: Sequence[str],
    quiet: bool = False,
    *,
    small: bool = False,
    tensorflow: bool = False,
) -> tuple[PipelineOptions, object | None]:
    """Options and runner: the given ``--runner``, else a local :class:`LocalRunner`.

    Never Beam's ``DirectRunner`` default, which tries Prism first (a downloaded Go
    binary). Locally: one SDK worker process per core (``direct_num_workers``),
    each loading the model once; ``quiet``: workers log errors only
    (:mod:`beam_jobs.sdk_worker`); ``tensorflow``: the engine needs TensorFlow, and
    quiet workers import it while their start-up lines are captured. ``small`` (fewer
    than :data:`SMALL_RUN_FILES` local inputs): in this process (``in_memory``), since
    starting worker processes costs more than they would save. An explicit
    ``--direct_running_mode`` or ``--direct_num_workers`` always wins.
    """
    options = PipelineOptions(list(pipeline_args))
    standard = options.view_as(StandardOptions)
    if standard.runner:
        if standard.runner.lower() in _DASK_NAMES:  # Beam's, or its short names
            standard.runner = DASK_RUNNER
        return options, None
    direct = options.view_as(DirectOptions)
    mode_given = any(arg.startswith("--direct_running_mode") for arg in pipeline_args)
    workers_given = any(arg.startswith("--direct_num_workers") for arg in pipeline_args)
    in_process = small and not mode_given and not workers_given
    if not mode_given:
        direct.direct_running_mode = "in_memory" if in_process else "multi_processing"
    if not workers_given:
        direct.direct_num_workers = 1 if in_process else cpu_count()  # Beam's default: 1
    if direct.direct_running_mode == "multi_processing":
        # One worker process per core: each TensorFlow in them gets its share of the
        # cores, not all of them (N workers x N threads oversubscribes the machine).
        threads = max(1, cpu_count() // max(1, direct.direct_num_workers))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
        # SDK worker processes start as `python -m ...` in this folder: make sure they
        # import this checkout of logo_batch / beam_jobs even when it is not installed.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in parts:
            os.environ["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return options, LocalRunner(quiet=quiet, tensorflow=tensorflow)


def query_metrics(result) -> dict[str, int]:
    """Beam counters where the runner reports them (the Dask runner does not).

    ``model_loads`` is RunInference's own ``load_model_latency_milli_secs`` count:
    how many worker processes loaded the model.
    """
    try:
        found = result.metrics().query(MetricsFilter())
    except Exception:  # noqa: BLE001  (NotImplementedError, or runner-specific)
        return {}
    totals: dict[str, int] = {}
    for counter in found.get("counters", []):
        if counter.key.metric.namespace == METRICS_NAMESPACE:
            name = counter.key.metric.name
            totals[name] = totals.get(name, 0) + int(counter.committed or 0)
    for dist in found.get("distributions", []):
        if dist.key.metric.name == "load_model_latency_milli_secs" and dist.committed:
            totals["model_loads"] = totals.get("model_loads", 0) + dist.committed.count
    return totals
