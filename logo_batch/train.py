"""Training: ``train(TrainConfig) -> TrainResult`` and ``logo-batch train``.

Two phases by default: the head on a frozen backbone, then fine-tuning of the top of
the backbone at a lower learning rate (BatchNorm in inference mode). With a pretrained
backbone and the default head, the head phase is a linear probe fitted on pooled
features computed once (LP-FT), and augmentation starts with fine-tuning. The ``seed``
head reproduces the article's recipe: one phase, frozen base, constant-rate Adam.

Fault tolerance: each phase has its own ``BackupAndRestore`` folder and
``state.json`` records finished phases, so rerunning the same command after a crash
resumes where it stopped. Everything lands in the output folder (see README of the
run: ``history.csv``, ``training_curves.png``, ``logs/``, ``test_*``, ``bundle/``).
In a multi-worker cluster the chief writes there; other workers write to
``.workers/<task>/`` inside it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import sys
import time
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from logo_batch import data as data_lib
from logo_batch import distribute, evaluate, models
from logo_batch.augment import AugmentConfig, make_augment_fn
from logo_batch.bundle import METADATA_FILE, BundleMetadata, save_bundle

STATE_FILE = "state.json"
HISTORY_FILE = "history.csv"
BEST_WEIGHTS = "checkpoints/best.weights.h5"
# Fields that must match to resume a run in the same output folder.
_RESUME_FIELDS = ("dataset", "config", "image_size", "backbone", "head", "dropout", "seed")


@dataclass
class TrainConfig:
    """Everything a training run needs; ``None`` fields take the recipe's default."""

    data_dir: str
    output_dir: str
    config: str = "crops"
    dataset: str = data_lib.DATASET_NAME
    image_size: int | None = None  # default 224 (MobileNetV2 native); 128 for the seed head
    backbone: str = "mobilenet_v2"
    weights: str = models.WEIGHTS_IMAGENET
    head: str = "default"
    dropout: float = 0.2
    epochs: int | None = None  # head phase; default 30 on cached features, else 10
    fine_tune_epochs: int | None = None  # default 12; 0 for the seed head
    fine_tune_fraction: float = 0.5
    batch_size: int = 32  # global batch size
    learning_rate: float = 1e-3
    fine_tune_learning_rate: float = 1e-4
    lr_schedule: str | None = None  # cosine (default) or constant (seed)
    label_smoothing: float | None = None  # default 0.1; 0 for the seed head
    class_weights: bool = False
    augment: bool = True
    head_on_features: bool = True  # pretrained base + default head: linear-probe first
    blur: float = 0.0
    cache: str = data_lib.CACHE_MEMORY  # memory, none, or a folder for file caches
    shuffle_buffer: int = 2048
    early_stopping_patience: int = 5
    rejection_keep: float = evaluate.DEFAULT_KEEP
    mixed_precision: str = "auto"
    xla: str = "auto"
    strategy: str = "auto"
    seed: int = 42
    steps_per_epoch: int | None = None  # default: one pass over the training split
    train_split: str = "train"
    validation_split: str = "validation"
    test_split: str = "test"
    export_serving: bool = True
    verbose: int | str = "auto"

    def resolved(self) -> TrainConfig:
        """A copy with the recipe defaults filled in."""
        seed_head = self.head == "seed"
        features = head_phase_on_features(self)
        return dataclasses.replace(
            self,
            image_size=(128 if seed_head else 224) if self.image_size is None else self.image_size,
            epochs=(30 if features else 10) if self.epochs is None else self.epochs,
            fine_tune_epochs=(0 if seed_head else 12)
            if self.fine_tune_epochs is None
            else self.fine_tune_epochs,
            lr_schedule=self.lr_schedule or ("constant" if seed_head else "cosine"),
            label_smoothing=(0.0 if seed_head else 0.1)
            if self.label_smoothing is None
            else self.label_smoothing,
        )

    def validate(self) -> None:
        """Raises ``ValueError`` naming the option when a value cannot work."""
        checks = [
            ("image_size", self.image_size, self.image_size is None or self.image_size >= 32,
             "at least 32 pixels"),
            ("epochs", self.epochs, self.epochs is None or self.epochs >= 0, ">= 0"),
            ("fine_tune_epochs", self.fine_tune_epochs,
             self.fine_tune_epochs is None or self.fine_tune_epochs >= 0, ">= 0"),
            ("batch_size", self.batch_size, self.batch_size >= 1, ">= 1"),
            ("learning_rate", self.learning_rate, self.learning_rate > 0, "> 0"),
            ("fine_tune_learning_rate", self.fine_tune_learning_rate,
             self.fine_tune_learning_rate > 0, "> 0"),
            ("fine_tune_fraction", self.fine_tune_fraction, 0 < self.fine_tune_fraction <= 1,
             "in (0, 1]"),
            ("dropout", self.dropout, 0 <= self.dropout < 1, "in [0, 1)"),
            ("label_smoothing", self.label_smoothing,
             self.label_smoothing is None or 0 <= self.label_smoothing < 1, "in [0, 1)"),
            ("blur", self.blur, self.blur >= 0, ">= 0"),
            ("shuffle_buffer", self.shuffle_buffer, self.shuffle_buffer >= 1, ">= 1"),
            ("early_stopping_patience", self.early_stopping_patience,
             self.early_stopping_patience >= 1, ">= 1"),
            ("rejection_keep", self.rejection_keep, 0 < self.rejection_keep <= 1, "in (0, 1]"),
            ("steps_per_epoch", self.steps_per_epoch,
             self.steps_per_epoch is None or self.steps_per_epoch >= 1, ">= 1"),
        ]  # fmt: skip
        for name, value, ok, rule in checks:
            if not ok:
                raise ValueError(f"--{name.replace('_', '-')} must be {rule}, not {value}")
        if self.epochs == 0 and self.fine_tune_epochs == 0:
            raise ValueError("--epochs and --fine-tune-epochs are both 0: nothing to train")
        weights = os.fspath(self.weights)
        if weights not in (models.WEIGHTS_IMAGENET, models.WEIGHTS_NONE):
            if not os.path.isfile(weights):
                raise ValueError(
                    f"--weights {weights}: no such file (use imagenet, none, or a weights file)"
                )


def head_phase_on_features(cfg: TrainConfig) -> bool:
    """Whether the head phase fits the head on cached features of the frozen base.

    With a pretrained base and the default head (pooling, dropout, dense), the head
    is a linear probe: it is fitted to convergence on the pooled features of the
    un-augmented training images, computed once (a few KB per image), in seconds
    instead of one full forward pass of the base per epoch. Fine-tuning with
    augmentation follows (LP-FT: Kumar et al., ICLR 2022).
    """
    return (
        cfg.head_on_features
        and cfg.head == "default"
        and os.fspath(cfg.weights) != models.WEIGHTS_NONE
    )


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
        _atomic_write(self.path, history.to_csv(index=False))


def read_history(path: Path) -> pd.DataFrame:
    """The history CSV (empty frame when absent)."""
    return pd.read_csv(path) if path.is_file() else pd.DataFrame()


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def _read_state(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: corrupt run state ({error}); delete it to start over") from error


def _check_resumable(state: dict[str, Any], cfg: TrainConfig, state_path: Path) -> None:
    previous = state.get("config", {})
    changed = {k for k in _RESUME_FIELDS if k in previous and previous[k] != getattr(cfg, k)}
    if changed:
        raise ValueError(
            f"{state_path}: the output folder holds a run with different "
            f"{', '.join(sorted(changed))}; use a new --output-dir"
        )


def _schedule(cfg: TrainConfig, learning_rate: float, steps: int):
    if cfg.lr_schedule == "constant":
        return learning_rate
    if cfg.lr_schedule != "cosine":
        raise ValueError(f"lr_schedule must be cosine or constant, not {cfg.lr_schedule!r}")
    return keras.optimizers.schedules.CosineDecay(learning_rate, max(1, steps), alpha=0.01)


def _compile(model: keras.Model, cfg: TrainConfig, learning_rate, jit: bool) -> None:
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


def _callbacks(work: Path, phase: str, cfg: TrainConfig, extra: Sequence) -> list:
    history = read_history(work / HISTORY_FILE)
    best = (
        float(history["val_accuracy"].max()) if len(history) and "val_accuracy" in history else None
    )
    return [
        keras.callbacks.BackupAndRestore(str(work / "backup" / phase)),
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
        *_tensorboard(work / "logs"),
        *extra,
    ]


def _tensorboard(log_dir: Path) -> list:
    """The TensorBoard callback, or nothing (with a warning) when tensorboard is absent."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        print("warning: tensorboard is not installed: no TensorBoard logs", file=sys.stderr)
        return []
    return [keras.callbacks.TensorBoard(str(log_dir))]


@dataclass(frozen=True)
class TrainingData:
    """The datasets of a run and how many steps make an epoch of each."""

    splits: dict[str, data_lib.SplitInfo]
    train: tf.data.Dataset  # repeated, shuffled, augmented full batches
    validation: tf.data.Dataset  # full batches, zero-weight padding at the end
    plain_train: tf.data.Dataset | None  # un-augmented, for the head's features
    steps: int
    validation_steps: int


def _datasets(cfg: TrainConfig, task: distribute.TaskInfo, replicas: int) -> TrainingData:
    splits = {
        name: data_lib.load_split(cfg.data_dir, cfg.config, split, dataset=cfg.dataset)
        for name, split in (
            ("train", cfg.train_split),
            ("validation", cfg.validation_split),
            ("test", cfg.test_split),
        )
    }
    train_info = splits["train"]
    num_classes = len(train_info.logo_class_names)
    cache = cfg.cache
    if cache not in (data_lib.CACHE_MEMORY, data_lib.CACHE_NONE) and not task.is_chief:
        cache = os.path.join(cache, task.name)  # workers must not share file caches
    counts = {}  # logo examples per split (labels only are read)
    for name in ("train", "validation"):
        labels = data_lib.split_labels(splits[name].records)
        counts[name] = labels[labels < num_classes]
        if not counts[name].size:
            raise ValueError(f"{cfg.data_dir}: split {splits[name].split!r} has no logo examples")
    weights = data_lib.class_weights(counts["train"], num_classes) if cfg.class_weights else None
    common = {
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "num_classes": num_classes,
        "one_hot": True,
        "cache": cache,
    }
    augment = None
    if cfg.augment:
        augment = make_augment_fn(AugmentConfig(blur=cfg.blur), seed=cfg.seed)
    train_ds = data_lib.make_dataset(
        train_info.records,
        training=True,
        augment=augment,
        shuffle_buffer=cfg.shuffle_buffer,
        seed=cfg.seed,
        sample_weights=weights,
        cache_name=f"{cfg.config}_{cfg.train_split}",
        repeat=True,  # then full batches only: every replica gets its share
        **common,
    )
    val_ds = data_lib.make_dataset(
        splits["validation"].records,
        cache_name=f"{cfg.config}_{cfg.validation_split}",
        pad_to_batches=counts["validation"].size,  # full batches, exact weighted metrics
        **common,
    )
    validation_steps = math.ceil(counts["validation"].size / cfg.batch_size)
    if replicas > 1:  # distributed iterators must not run dry: fixed step counts
        val_ds = val_ds.repeat()
    steps = cfg.steps_per_epoch or math.ceil(counts["train"].size / cfg.batch_size)
    plain_train_ds = None  # un-augmented, uncached: read once for the head's features
    if head_phase_on_features(cfg):
        plain_train_ds = data_lib.make_dataset(
            train_info.records, **{**common, "cache": data_lib.CACHE_NONE}
        )
    return TrainingData(splits, train_ds, val_ds, plain_train_ds, steps, validation_steps)


def _say(cfg: TrainConfig, message: str) -> None:
    """A progress line for the user (silent with ``verbose=0``)."""
    if cfg.verbose != 0:
        print(message, flush=True)


def _phases(cfg: TrainConfig) -> list[tuple[str, int, float]]:
    """``(name, epochs, learning_rate)`` of each phase the recipe runs."""
    phases = [("head", cfg.epochs, cfg.learning_rate)]
    if cfg.fine_tune_epochs:
        phases.append(("fine_tune", cfg.fine_tune_epochs, cfg.fine_tune_learning_rate))
    return [phase for phase in phases if phase[1] > 0]


def _phase_banner(cfg: TrainConfig, index: int, total: int, phase: str, epochs: int) -> str:
    if phase == "fine_tune":
        what = f"fine-tune the top {cfg.fine_tune_fraction:.0%} of the {cfg.backbone} base"
        lr = cfg.fine_tune_learning_rate
    elif head_phase_on_features(cfg):
        what = f"head: linear probe on pooled features of the frozen {cfg.backbone} base"
        lr = cfg.learning_rate
    else:
        what = f"head on a frozen {cfg.backbone} base"
        lr = cfg.learning_rate
    return f"== phase {index}/{total}: {what} ({epochs} epochs, learning rate {lr:g})"


def _fit_phases(cfg, model, work, datasets: TrainingData, jit, extra):
    """Runs each unfinished phase; returns ``{phase: epochs run}``.

    A phase that finished in an earlier run is skipped, and the model continues from
    (or, after the last phase, ends with) that phase's final weights, so a rerun never
    exports or evaluates an untrained model.
    """
    state_path = work / STATE_FILE
    state = _read_state(state_path)
    completed: dict[str, int] = state.setdefault("completed", {})
    phases = _phases(cfg)
    offset = 0
    previous_end: Path | None = None
    for index, (phase, epochs, learning_rate) in enumerate(phases, start=1):
        end_weights = work / "checkpoints" / f"{phase}_end.weights.h5"
        if phase == "fine_tune":
            models.set_fine_tune(model, cfg.fine_tune_fraction)
        if phase in completed and end_weights.is_file():
            _say(cfg, f"== phase {index}/{len(phases)}: {phase} finished earlier, skipped")
            offset += completed[phase]
            previous_end = end_weights
            continue
        if previous_end is not None:  # continue from the previous phase's final weights
            _load_weights(model, str(previous_end))
        _say(cfg, _phase_banner(cfg, index, len(phases), phase, epochs))
        if phase == "head" and datasets.plain_train is not None:
            _fit_head_on_features(cfg, model, work, datasets, jit, extra)
            model.save_weights(str(work / BEST_WEIGHTS))
        else:
            _compile(model, cfg, _schedule(cfg, learning_rate, datasets.steps * epochs), jit)
            # Keras keeps the epoch BackupAndRestore restored in a previous fit() and
            # would start this phase there (Keras 3.15 never resets it): clear it.
            model._initial_epoch = None
            model.fit(
                datasets.train,
                validation_data=datasets.validation,
                initial_epoch=offset,
                epochs=offset + epochs,
                steps_per_epoch=datasets.steps,
                validation_steps=datasets.validation_steps,
                shuffle=False,  # the dataset shuffles
                callbacks=_callbacks(work, phase, cfg, extra),
                verbose=cfg.verbose,
            )
            _check_finite(work, phase)
            if (work / BEST_WEIGHTS).is_file():
                _load_weights(model, str(work / BEST_WEIGHTS))
        model.save_weights(str(end_weights))
        completed[phase] = _finished_epochs(work, phase)
        offset += completed[phase]
        _atomic_write(state_path, json.dumps(state, indent=2))
        previous_end = end_weights
    if previous_end is not None:
        _load_weights(model, str(previous_end))  # the final weights, also when all were skipped
    return completed


def _load_weights(model: keras.Model, path: Path | str) -> None:
    """Loads model weights (a weights file holds no optimizer state worth a warning)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Skipping variable loading for optimizer")
        model.load_weights(str(path))


def _pooled_features(
    extractor: keras.Model, ds: tf.data.Dataset, steps: int | None = None, verbose: bool = True
):
    """Runs the frozen base over a dataset once: (features, labels) tensors.

    Zero-weight padding examples (see :func:`data.pad_with_zero_weights`) are dropped.
    """
    extract = tf.function(lambda images: extractor(images, training=False))
    features, labels = [], []
    progress = keras.utils.Progbar(steps, unit_name="batch", verbose=int(verbose))
    for step, (images, batch_labels, *weights) in enumerate(ds.take(steps) if steps else ds):
        batch = tf.cast(extract(images), tf.float32)
        if weights:
            keep = weights[0] > 0
            batch, batch_labels = batch[keep], batch_labels[keep]
        features.append(batch)
        labels.append(batch_labels)
        progress.update(step + 1)
    progress.update(len(features), finalize=True)
    return tf.concat(features, 0), tf.concat(labels, 0)


def _fit_head_on_features(cfg, model, work, datasets: TrainingData, jit, extra):
    """The head phase as a linear probe on pooled features computed once (see
    :func:`head_phase_on_features`); the head layers are shared with ``model``.

    Features are batched like images: training repeats then takes full batches,
    validation is padded with zero-weight examples, so a distribution strategy never
    gives a replica an empty batch.
    """
    pool = model.get_layer("head_pool")
    extractor = keras.Model(model.input, pool.output)
    started = time.perf_counter()
    _say(cfg, "features of the training images (frozen base, once):")
    verbose = cfg.verbose != 0
    train_x, train_y = _pooled_features(extractor, datasets.plain_train, verbose=verbose)
    _say(cfg, "features of the validation images:")
    val_x, val_y = _pooled_features(
        extractor, datasets.validation, datasets.validation_steps, verbose
    )
    _say(
        cfg,
        f"features of {int(train_x.shape[0])} training and {int(val_x.shape[0])} validation "
        f"images in {time.perf_counter() - started:.1f} s",
    )
    inputs = keras.Input(pool.output.shape[1:])
    outputs = model.get_layer("predictions")(model.get_layer("head_dropout")(inputs))
    head = keras.Model(inputs, outputs, name="head")
    num_train = int(train_x.shape[0])
    steps = math.ceil(num_train / cfg.batch_size)
    train_ds = (
        tf.data.Dataset.from_tensor_slices((train_x, train_y))
        .shuffle(num_train, seed=cfg.seed, reshuffle_each_iteration=True)
        .repeat()
        .batch(cfg.batch_size, drop_remainder=True)
    )
    val_ds = data_lib.pad_with_zero_weights(
        tf.data.Dataset.from_tensor_slices((val_x, val_y)), int(val_x.shape[0]), cfg.batch_size
    ).batch(cfg.batch_size, drop_remainder=True)
    _compile(head, cfg, _schedule(cfg, cfg.learning_rate, steps * cfg.epochs), jit)
    head.fit(
        train_ds,
        steps_per_epoch=steps,
        epochs=cfg.epochs,
        validation_data=val_ds,
        shuffle=False,  # the dataset shuffles
        callbacks=[
            keras.callbacks.TerminateOnNaN(),
            HistoryCSV(work / HISTORY_FILE, "head"),
            keras.callbacks.EarlyStopping(
                monitor="val_accuracy",
                mode="max",
                patience=max(cfg.early_stopping_patience, cfg.epochs // 3),
                restore_best_weights=True,
            ),
            *_tensorboard(work / "logs"),
            *extra,
        ],
        verbose=cfg.verbose,
    )
    _check_finite(work, "head")


def _check_finite(work: Path, phase: str) -> None:
    history = read_history(work / HISTORY_FILE)
    rows = history[history["phase"] == phase] if len(history) else history
    if not len(rows) or not np.isfinite(rows["loss"].iloc[-1]):
        raise RuntimeError(f"{work}: training diverged in phase {phase} (loss is NaN or inf)")


def _finished_epochs(work: Path, phase: str) -> int:
    history = read_history(work / HISTORY_FILE)
    return int((history["phase"] == phase).sum()) if len(history) else 0


def _export_model(cfg: TrainConfig, num_classes: int, weights: list[np.ndarray]) -> keras.Model:
    """A float32, non-distributed copy of the trained model for the bundle."""
    keras.mixed_precision.set_global_policy("float32")
    export = models.build_model(
        cfg.backbone, num_classes, cfg.image_size, models.WEIGHTS_NONE, cfg.head, cfg.dropout
    )
    export.set_weights(weights)
    return export


def _finished_result(work: Path, is_chief: bool, state: dict[str, Any]) -> TrainResult | None:
    """The result of a run that already finished in ``work``, or ``None``."""
    metrics_path = work / "metrics.json"
    if not state.get("finished"):
        return None
    if is_chief and not (metrics_path.is_file() and (work / "bundle" / METADATA_FILE).is_file()):
        return None  # finished, but its outputs were removed since: redo the export
    metrics = json.loads(metrics_path.read_text(encoding="utf-8")) if is_chief else {}
    bundle_dir = work / "bundle" if is_chief else None
    history = read_history(work / HISTORY_FILE)
    return TrainResult(work, bundle_dir, metrics, history, is_chief, state.get("completed", {}))


def train(config: TrainConfig, *, callbacks: Sequence = ()) -> TrainResult:
    """Trains, evaluates and writes the run folder; resumes an interrupted run.

    Rerunning a finished run changes nothing and returns its result; a run killed at
    any point (in a phase, between phases, before or during the export) resumes and
    finishes with the weights of its last finished phase.
    """
    cfg = config.resolved()
    cfg.validate()
    task = distribute.task_info()
    out = Path(cfg.output_dir)
    work = out if task.is_chief else out / ".workers" / task.name
    state_path = work / STATE_FILE
    state = _read_state(state_path)
    _check_resumable(state, cfg, state_path)
    finished = _finished_result(work, task.is_chief, state)
    if finished is not None:
        _say(
            cfg,
            f"{work}: this run finished earlier; nothing to do (use a new --output-dir "
            "to train again)",
        )
        return finished
    strategy = distribute.make_strategy(cfg.strategy)  # first: MultiWorker needs it
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ValueError(
            f"--batch-size {cfg.batch_size} (the global batch) must be divisible by the "
            f"{replicas} replicas of the {type(strategy).__name__}"
        )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from logo_batch.keras_compat import patch_multi_worker_fit

        patch_multi_worker_fit()
    mixed = distribute.resolve_switch(cfg.mixed_precision, "mixed_precision")
    jit = distribute.resolve_switch(cfg.xla, "xla")
    (work / "checkpoints").mkdir(parents=True, exist_ok=True)
    state["config"] = {k: getattr(cfg, k) for k in _RESUME_FIELDS}
    state.setdefault("completed", {})
    _atomic_write(state_path, json.dumps(state, indent=2))
    keras.utils.set_random_seed(cfg.seed)
    previous_policy = keras.mixed_precision.global_policy().name
    try:
        datasets = _datasets(cfg, task, replicas)
        splits = datasets.splits
        class_names = splits["train"].logo_class_names
        distribute.set_mixed_precision(mixed)
        with strategy.scope():  # variables, optimizer and fit in the strategy's scope
            model = models.build_model(
                cfg.backbone, len(class_names), cfg.image_size, cfg.weights, cfg.head, cfg.dropout
            )
            if replicas > 1:
                models.synchronize_batch_norm(model)
            completed = _fit_phases(cfg, model, work, datasets, jit, callbacks)
        history = read_history(work / HISTORY_FILE)
        from logo_batch.plots import plot_history

        plot_history(history, work / "training_curves.png")
        if not task.is_chief:
            _mark_finished(state_path)
            return TrainResult(work, None, {}, history, False, completed)
        export = _export_model(cfg, len(class_names), model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)
    val_scores, val_labels = evaluate.predict_dataset(
        export, splits["validation"].records, cfg.image_size, cfg.batch_size
    )
    threshold = evaluate.choose_threshold(val_scores, val_labels, cfg.rejection_keep)
    val_metrics = evaluate.compute_metrics(val_scores, val_labels, threshold)
    test_scores, test_labels = evaluate.predict_dataset(
        export, splits["test"].records, cfg.image_size, cfg.batch_size
    )
    test_metrics = evaluate.write_report(
        test_scores, test_labels, class_names, work, threshold=threshold, prefix="test"
    )
    metrics = {"validation": val_metrics, "test": test_metrics}
    info = splits["train"]
    epoch_seconds = history["seconds"].tolist() if "seconds" in history else []
    metadata = BundleMetadata(
        class_names=class_names,
        image_size=cfg.image_size,
        backbone=cfg.backbone,
        weights=os.fspath(cfg.weights),
        head=cfg.head,
        dataset={
            "name": info.dataset,
            "config": info.config,
            "version": info.version,
            "splits": {
                name: {"split": s.split, "num_examples": s.num_examples}
                for name, s in splits.items()
            },
        },
        metrics=metrics,
        rejection_threshold=threshold,
        training={
            "config": dataclasses.asdict(cfg),
            "phases": completed,
            "epoch_seconds": epoch_seconds,
            "rejection_rule": f"top score keeping {cfg.rejection_keep:.0%} of correct "
            "validation predictions",
            "mixed_precision": mixed,
            "xla": jit,
            "strategy": type(strategy).__name__,
            "replicas": strategy.num_replicas_in_sync,
            "tensorflow": tf.__version__,
            "keras": keras.__version__,
        },
    )
    bundle_dir = save_bundle(export, metadata, work / "bundle", export_serving=cfg.export_serving)
    _atomic_write(work / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    _mark_finished(state_path)
    return TrainResult(work, bundle_dir, metrics, history, True, completed)


def _mark_finished(state_path: Path) -> None:
    """Records that the run is complete: a rerun returns it unchanged."""
    state = _read_state(state_path)
    state["finished"] = True
    _atomic_write(state_path, json.dumps(state, indent=2))


def configure_parser(parser: argparse.ArgumentParser) -> None:
    d = TrainConfig(data_dir="", output_dir="")
    a = parser.add_argument
    a("--data-dir", required=True, help="TFDS data_dir holding the prepared dataset")
    a("--output-dir", required=True, help="run folder (rerun the same command to resume)")
    a("--config", default=d.config, choices=("crops", "images"))
    a("--image-size", type=int, default=None, help="pixels (default 224; seed head 128)")
    a("--backbone", default=d.backbone, choices=sorted(models.BACKBONES))
    a("--weights", default=d.weights, help="imagenet, none, or a base weights file (no top)")
    a("--head", default=d.head, choices=models.HEADS)
    a("--dropout", type=float, default=d.dropout)
    a("--epochs", type=int, default=None, help="head-phase epochs (30 on features, else 10)")
    a("--fine-tune-epochs", type=int, default=None, help="default 12; 0 for the seed head")
    a("--fine-tune-fraction", type=float, default=d.fine_tune_fraction)
    a("--batch-size", type=int, default=d.batch_size, help="global batch size")
    a("--learning-rate", type=float, default=d.learning_rate)
    a("--fine-tune-learning-rate", type=float, default=d.fine_tune_learning_rate)
    a("--lr-schedule", choices=("cosine", "constant"), default=None)
    a("--label-smoothing", type=float, default=None)
    a("--class-weights", action="store_true", help="balanced class weights")
    a("--no-augment", dest="augment", action="store_false")
    a(
        "--head-on-images",
        dest="head_on_features",
        action="store_false",
        help="train the head on augmented images, not on cached features of the frozen base",
    )
    a("--blur", type=float, default=d.blur, help="random Gaussian blur strength (0 = off)")
    a("--cache", default=d.cache, help="memory, none, or a folder for file caches")
    a("--shuffle-buffer", type=int, default=d.shuffle_buffer)
    a("--early-stopping-patience", type=int, default=d.early_stopping_patience)
    a("--rejection-keep", type=float, default=d.rejection_keep)
    a("--mixed-precision", choices=distribute.SWITCH_VALUES, default=d.mixed_precision)
    a("--xla", choices=distribute.SWITCH_VALUES, default=d.xla)
    a("--strategy", choices=distribute.STRATEGIES, default=d.strategy)
    a("--seed", type=int, default=d.seed)
    a("--steps-per-epoch", type=int, default=None)
    for role in ("train", "validation", "test"):
        a(
            f"--{role}-split",
            default=getattr(d, f"{role}_split"),
            help=f"TFDS split for {role} (slicing works: {role}[:50%%])",
        )
    a("--no-serving-export", dest="export_serving", action="store_false")
    a("--dataset", default=d.dataset, help=argparse.SUPPRESS)


def run(args: argparse.Namespace) -> int:
    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    try:
        result = train(config)
    except (FileNotFoundError, ValueError, models.WeightsError) as error:
        print(f"logo-batch train: error: {error}", file=sys.stderr)
        return 1
    if result.is_chief:
        test = result.metrics["test"]
        print(f"bundle: {result.bundle_dir}")
        print(
            f"test accuracy: top-1 {test.get('accuracy', float('nan')):.4f}, "
            f"top-5 {test.get('top5_accuracy', float('nan')):.4f} "
            f"({test.get('num_logo', test.get('num_examples', '?'))} logo images)"
        )
    return 0
