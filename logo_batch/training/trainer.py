"""``train()``: the recipe, from a configuration to a finished run folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf

from logo_batch.inference import engines
from logo_batch.training import distribute, export, models, run_folder
from logo_batch.training.augmentation import augment_in_train_step, run_augmentation
from logo_batch.training.config import AUGMENT_DEVICE, TrainConfig, resolve_augment_on
from logo_batch.training.datasets import build_datasets
from logo_batch.training.fitting import say
from logo_batch.training.phases import fit_phases
from logo_batch.training.run_folder import HISTORY_FILE, STATE_FILE, TrainResult, read_history


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
    state = run_folder.read_state(state_path)
    run_folder.check_resumable(state, cfg, state_path)
    finished = run_folder.finished_result(work, task.is_chief, state)
    if finished is not None:
        say(cfg, f"{work}: this run finished earlier; nothing to do (use a new --output-dir "
            "to train again)")  # fmt: skip
        return finished

    strategy = distribute.make_strategy(cfg.strategy)  # first: MultiWorker needs it
    replicas = strategy.num_replicas_in_sync
    if cfg.batch_size % replicas:
        raise ValueError(
            f"--batch-size {cfg.batch_size} (the global batch) must be divisible by the "
            f"{replicas} replicas of the {type(strategy).__name__}"
        )
    if isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy):
        from logo_batch.training.keras_compat import patch_multi_worker_fit

        patch_multi_worker_fit()
    policy = distribute.resolve_precision(cfg.mixed_precision)  # GPU, CPU bf16 units, else fp32
    jit = distribute.resolve_switch(cfg.xla, "xla")
    (work / "checkpoints").mkdir(parents=True, exist_ok=True)
    run_folder.start_state(state_path, state, cfg)
    keras.utils.set_random_seed(cfg.seed)

    previous_policy = keras.mixed_precision.global_policy().name
    try:
        datasets = build_datasets(cfg, task, replicas, resolve_augment_on(cfg))
        class_names = datasets.class_names
        distribute.set_precision(policy)
        xla_step = jit  # whether the image phases' training step runs with XLA
        with strategy.scope():  # variables, optimizer and fit in the strategy's scope
            model = models.build_model(
                cfg.backbone, len(class_names), cfg.image_size, cfg.weights, cfg.head, cfg.dropout
            )
            if replicas > 1:
                models.synchronize_batch_norm(model)
            if datasets.augment_on == AUGMENT_DEVICE:
                augment = run_augmentation(cfg)  # its seed state lives with the replicas
                xla_step = augment_in_train_step(model, augment, jit=jit, replicas=replicas)
                say(
                    cfg,
                    "augmentation: in the training step, on the device"
                    + (f" (without XLA: {replicas} replicas)" if jit and not xla_step else ""),
                )
            completed = fit_phases(cfg, model, work, datasets, jit, callbacks)
        history = read_history(work / HISTORY_FILE)
        from logo_batch.evaluation.plots import plot_history

        plot_history(history, work / "training_curves.png")
        if not task.is_chief:
            run_folder.mark_finished(state_path)
            return TrainResult(work, None, {}, history, False, completed)
        model = export.export_model(cfg, len(class_names), model.get_weights())
    finally:
        keras.mixed_precision.set_global_policy(previous_policy)

    tflite = export.float32_tflite(cfg, model, datasets)
    engine = None if tflite[0] is None else engines.TfliteModel(tflite[0])
    metrics, threshold = export.evaluate_model(cfg, model, datasets, work, photo_engine=engine)
    how = {
        "phases": completed,
        "mixed_precision": policy,
        "xla": jit,
        "xla_train_step": xla_step,
        "augment_on": datasets.augment_on,  # cpu (tf.data), device (training step) or None
        "augmentation": cfg.augmentation if datasets.augment_on else None,
        "strategy": type(strategy).__name__,
        "replicas": replicas,
    }
    bundle_dir = export.write_bundle(
        cfg, model, datasets, metrics, threshold, work, history, how, tflite
    )
    run_folder.mark_finished(state_path)
    return TrainResult(work, bundle_dir, metrics, history, True, completed)
