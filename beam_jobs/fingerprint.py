"""The identity of what makes a row: the model, its metadata and the settings of the run.

Every row of the job's CSV holds it (column ``fingerprint``); ``--previous`` carries a
row over only when its fingerprint is this run's (:mod:`beam_jobs.previous`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

import logo_batch
from beam_jobs.errors import ClassifyJobError
from logo_batch.inference.bundle import METADATA_FILE, MODEL_FILE, bundle_file, open_bundle_file
from logo_batch.inference.engines import INT8_FILE, TFLITE_FILE

FINGERPRINT_DIGITS = 16
_CHUNK = 1 << 20


def _hash_file(digest, bundle_dir: str, name: str) -> None:
    try:
        with open_bundle_file(bundle_dir, name) as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
    except OSError as error:  # open_bundle_file raises its file system's errors as OSError
        message = (
            f"{bundle_file(bundle_dir, name)}: cannot read it to fingerprint the model: {error}"
        )
        raise ClassifyJobError(message) from error


def job_fingerprint(
    bundle_dir: str,
    *,
    mode: str,
    grid: Sequence[tuple[int, float]],
    top_k: int,
    min_score: float | None,
    max_pixels: int,
    precision: str,
    int8_model: bool = False,
    tflite_model: bool = False,
) -> str:
    """16 hex digits of SHA-256 over the bundle's ``model.keras`` and ``metadata.json``
    bytes (and ``model.int8.tflite``'s when ``int8_model``, ``model.tflite``'s when
    ``tflite_model``: the run may use them) and every
    setting that shapes a row: the resolved ``mode``, the whole-photo ``grid``,
    ``top_k``, the effective ``min_score``, ``max_pixels``, the requested ``precision``
    and the version of logo-batch. Two runs with the same fingerprint write the same
    row for the same file (``--batch_size`` and the runner do not count: they do not
    change a row), except that ``auto`` precision is decided by each worker's CPU.
    """
    digest = hashlib.sha256()
    _hash_file(digest, bundle_dir, MODEL_FILE)
    _hash_file(digest, bundle_dir, METADATA_FILE)
    if int8_model:
        _hash_file(digest, bundle_dir, INT8_FILE)
    if tflite_model:
        _hash_file(digest, bundle_dir, TFLITE_FILE)
    settings = {
        "mode": mode,
        "grid": [[int(n), float(fraction)] for n, fraction in grid],
        "top_k": int(top_k),
        "min_score": None if min_score is None else float(min_score),
        "max_pixels": int(max_pixels),
        "precision": precision,
        "logo_batch": logo_batch.__version__,
    }
    digest.update(json.dumps(settings, sort_keys=True).encode("utf-8"))
    return digest.hexdigest()[:FINGERPRINT_DIGITS]


def bundle_digest(bundle_dir: str) -> str:
    """The bundle's identity: SHA-256 over each file that decides its answers
    (``metadata.json``, ``model.keras`` and the TensorFlow Lite models it holds), by name.
    Two bundles with the same digest give the same rows."""
    digest = hashlib.sha256()
    for name in (METADATA_FILE, MODEL_FILE, TFLITE_FILE, INT8_FILE):
        part = hashlib.sha256()
        try:
            _hash_file(part, bundle_dir, name)
        except ClassifyJobError as error:
            if name in (METADATA_FILE, MODEL_FILE) or not isinstance(
                error.__cause__, FileNotFoundError
            ):
                raise
            continue
        digest.update(f"{name}\0{part.hexdigest()}\n".encode())
    return digest.hexdigest()
