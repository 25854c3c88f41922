"""The run's manifest beside its output: what made the CSV (``results.manifest.json``).

Written with the CSV, in the same move (only a run that succeeded writes one; a failed
run leaves the earlier CSV and its manifest as they were). It names the model (path,
class names and :func:`~beam_jobs.fingerprint.bundle_digest`, the bundle's content hash),
the settings that shape a row, the engine(s) that ran the model (from the workers'
counters; where a runner reports none, the engine this machine would pick), the inputs
and the counts, so every CSV can be traced to the model and settings that wrote it.
``logo-batch report`` reads it.
"""

from __future__ import annotations

import datetime
import json
import os
from typing import Any

from apache_beam.io.filesystems import FileSystems

import logo_batch

MANIFEST_SUFFIX = ".manifest.json"


def run_manifest_path(output: str) -> str:
    """``results.csv`` -> ``results.manifest.json`` (beside it, any file system)."""
    stem, _ = os.path.splitext(output)
    return stem + MANIFEST_SUFFIX


def manifest_content(
    *,
    model: dict[str, Any],
    settings: dict[str, Any],
    engines: dict[str, int],
    inputs: dict[str, Any],
    counts: dict[str, Any],
    outputs: list[str],
) -> dict[str, Any]:
    """The manifest as a dictionary (JSON-ready)."""
    return {
        "job": "logo-batch classify",
        "logo_batch_version": logo_batch.__version__,
        "finished": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "model": model,
        "settings": settings,
        "engines": engines,
        "inputs": inputs,
        "counts": counts,
        "outputs": outputs,
    }


def stage_manifest(temp_dir: str, content: dict[str, Any]) -> str:
    """Writes the manifest into the run's temporary folder; returns its path there (the
    driver moves it beside the output with the CSV)."""
    path = FileSystems.join(temp_dir, "run" + MANIFEST_SUFFIX)
    with FileSystems.create(path) as handle:
        handle.write((json.dumps(content, indent=2, sort_keys=True) + "\n").encode("utf-8"))
    return path
