"""How a phase fits: compiling, learning-rate schedule, callbacks, weights, messages."""

from __future__ import annotations

import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import keras

from logo_batch.training.config import TrainConfig
from logo_batch.training.run_folder import (
    BEST_WEIGHTS,
    HISTORY_FILE,
    HistoryCSV,
    backup_folder,
    read_history,
)


def say(cfg: TrainConfig, message: str) -> None:
    """A progress line for the user (silent with ``verbose=0``)."""
    if cfg.verbose != 0:
        print(message, flush=True)


def schedule(cfg: TrainConfig, learning_rate: float, steps: int):
    if cfg.lr_schedule == "constant":
        return learning_rate
    if cfg.lr_schedule != "cosine":
        raise ValueError(f"lr_schedule must be cosine or constant, not {cfg.lr_schedule!r}")
    return keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps), alpha=0.01)


def compile_model(model: keras.Model, cfg: TrainConfig, learning_rate, jit: bool) -> None:
    model.compile(
        optimizer=keras.optimizers.Adam(learning_rate),
        loss=keras.losses.CategoricalCrossentropy(label_smoothing=cfg.label_smoothing),
        # Weighted: validation's zero-weight padding must not count (and with
        # --class-weights, training accuracy is class-balanced like the loss).
        weighted_metrics=[
            keras.metrics.CategoricalAccuracy(name="accuracy"),
            keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy"),
        ],
        jit_compile=jit,
    )


def phase_callbacks(work: Path, phase: str, cfg: TrainConfig, extra: Sequence) -> list:
    history = read_history(work / HISTORY_FILE)
    best = (
        float(history["val_accuracy"].max()) if len(history) and "val_accuracy" in history else None
    )
    return [
        keras.callbacks.BackupAndRestore(str(backup_folder(work, phase))),
        keras.callbacks.TerminateOnNaN(),
        HistoryCSV(work / HISTORY_FILE, phase),
        keras.callbacks.ModelCheckpoint(
            str(work / BEST_WEIGHTS),
            monitor="val_accuracy",
            mode="max",
            save_best_only=True,
            save_weights_only=True,
            initial_value_threshold=best,
        ),
        keras.callbacks.EarlyStopping(
            monitor="val_accuracy", mode="max", patience=cfg.early_stopping_patience
        ),
        *tensorboard_callbacks(work / "logs"),
        *extra,
    ]


def tensorboard_callbacks(log_dir: Path) -> list:
    """The TensorBoard callback, or nothing (with a warning) when tensorboard is absent."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        print("warning: tensorboard is not installed: no TensorBoard logs", file=sys.stderr)
        return []
    return [keras.callbacks.TensorBoard(str(log_dir))]


def load_weights(model: keras.Model, path: Path | str) -> None:
    """Loads model weights (a weights file holds no optimizer state worth a warning)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(path))
