"""The run folder: what a run writes as it goes and reads back to resume.

``state.json`` (resume fields, finished phases, finished run), ``history.csv`` (one
row per epoch), checkpoints, and the result of a finished run.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd

from logo_batch.inference.bundle import read_metadata
from logo_batch.inference.checks import check_keras_archive
from logo_batch.training.config import RESUME_FIELDS, TrainConfig

STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
METRICS_FILE = "metrics.json"
BUNDLE_DIR = "bundle"
BEST_WEIGHTS = "checkpoints/best.weights.h5"


def end_weights(work: Path, phase: str) -> Path:
    """The file holding a phase's final weights."""
    return work / "checkpoints" / f"{phase}_end.weights.h5"


def backup_folder(work: Path, phase: str) -> Path:
    """Where Keras's ``BackupAndRestore`` keeps a phase's last epoch."""
    return work / "backup" / phase


def weights_problem(path: Path) -> str:
    """Why the weights file ``path`` cannot be read ("" when it can be opened): a run
    killed while writing it leaves it cut short."""
    import h5py

    try:
        with h5py.File(path, "r"):
            return ""
    except (OSError, ValueError) as error:
        return str(error).splitlines()[0] if str(error) else type(error).__name__


def backup_problem(folder: Path) -> str:
    """Why a phase's backup (:func:`backup_folder`) cannot be restored ("" when it can,
    or there is none): its weights cut short, its epoch file not JSON."""
    weights, epoch = folder / "latest.weights.h5", folder / "training_metadata.json"
    if weights.is_file() and weights_problem(weights):
        return f"{weights}: {weights_problem(weights)}"
    if epoch.is_file():
        try:
            json.loads(epoch.read_text(encoding="utf-8"))["epoch"]  # noqa: B018
        except (ValueError, KeyError, TypeError, UnicodeDecodeError) as error:
            return f"{epoch}: not the epoch Keras wrote ({error})"
    return ""


@dataclass
class TrainResult:
    """What a run produced."""

    output_dir: Path
    bundle_dir: Path | None
    metrics: dict[str, Any]
    history: pd.DataFrame
    is_chief: bool = True
    phases: dict[str, int] = field(default_factory=dict)


class HistoryCSV(keras.callbacks.Callback):
    """One CSV row per epoch, keyed by epoch: a resumed run replaces, never duplicates."""

    def __init__(self, path: Path, phase: str):
        super().__init__()
        self.path, self.phase = path, phase
        self._started = 0.0

    def on_epoch_begin(self, epoch, logs=None):
        self._started = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, "phase": self.phase}
        row.update({k: float(v) for k, v in (logs or {}).items()})
        row["seconds"] = time.perf_counter() - self._started
        history = read_history(self.path)
        history = history[history["epoch"] < epoch] if len(history) else history
        history = pd.concat([history, pd.DataFrame([row])], ignore_index=True)
        atomic_write(self.path, history.to_csv(index=False))


def read_history(path: Path) -> pd.DataFrame:
    """The history CSV (empty frame when absent)."""
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def read_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        state = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: corrupt run state ({error}); delete it to start over") from error
    if not isinstance(state, dict) or not all(
        isinstance(state.get(key, {}), dict) for key in ("config", "completed")
    ):
        raise ValueError(
            f"{path}: corrupt run state (not the object a run writes); delete it to start over"
        )
    return state


def check_resumable(state: dict[str, Any], cfg: TrainConfig, state_path: Path) -> None:
    previous = state.get("config", {})
    changed = {k for k in RESUME_FIELDS if k in previous and previous[k] != getattr(cfg, k)}
    if changed:
        raise ValueError(
            f"{state_path}: the output folder holds a run with different "
            f"{', '.join(sorted(changed))}; use a new --output-dir"
        )


def start_state(state_path: Path, state: dict[str, Any], cfg: TrainConfig) -> None:
    """Records the run's resume fields (the first time) in ``state.json``."""
    state["config"] = {k: getattr(cfg, k) for k in RESUME_FIELDS}
    state.setdefault("completed", {})
    atomic_write(state_path, json.dumps(state, indent=2))


def mark_finished(state_path: Path) -> None:
    """Records that the run is complete: a rerun returns it unchanged."""
    state = read_state(state_path)
    state["finished"] = True
    atomic_write(state_path, json.dumps(state, indent=2))


def finished_result(work: Path, is_chief: bool, state: dict[str, Any]) -> TrainResult | None:
    """The result of a run that already finished in ``work``, or ``None`` (not finished,
    or its metrics or bundle were removed or damaged since: the export is redone)."""
    metrics_path = work / METRICS_FILE
    if not state.get("finished"):
        return None
    metrics: dict[str, Any] = {}
    if is_chief:
        try:
            metrics = json.loads(metrics_path.read_text(encoding="utf-8"))
            check_keras_archive(work / BUNDLE_DIR)
            read_metadata(work / BUNDLE_DIR)
        except (OSError, ValueError):  # removed, cut short, not JSON, a damaged bundle
            return None
    bundle_dir = work / BUNDLE_DIR if is_chief else None
    history = read_history(work / HISTORY_FILE)
    return TrainResult(work, bundle_dir, metrics, history, is_chief, state.get("completed", {}))


def check_finite(work: Path, phase: str) -> None:
    history = read_history(work / HISTORY_FILE)
    rows = history[history["phase"] == phase] if len(history) else history
    if not len(rows) or not np.isfinite(rows["loss"].iloc[-1]):
        raise RuntimeError(f"{work}: training diverged in phase {phase} (loss is NaN or inf)")


def finished_epochs(work: Path, phase: str) -> int:
    history = read_history(work / HISTORY_FILE)
    return int((history["phase"] == phase).sum()) if len(history) else 0
