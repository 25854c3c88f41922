"""The phase loop: head then fine-tuning, each fitted, checkpointed and resumable."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from logo_batch.training import models
from logo_batch.training.config import AUGMENT_DEVICE, TrainConfig, head_phase_on_features
from logo_batch.training.datasets import TrainingData
from logo_batch.training.fitting import (
    compile_model,
    load_weights,
    phase_callbacks,
    say,
    schedule,
)
from logo_batch.training.linear_probe import fit_head_on_features
from logo_batch.training.run_folder import (
    BEST_WEIGHTS,
    STATE_FILE,
    atomic_write,
    backup_folder,
    backup_problem,
    check_finite,
    end_weights,
    finished_epochs,
    read_state,
    weights_problem,
)


def phases_of(cfg: TrainConfig) -> list[tuple[str, int, float]]:
    """``(name, epochs, learning_rate)`` of each phase the recipe runs."""
    phases = [("head", cfg.epochs, cfg.learning_rate)]
    if cfg.fine_tune_epochs:
        phases.append(("fine_tune", cfg.fine_tune_epochs, cfg.fine_tune_learning_rate))
    return [phase for phase in phases if phase[1] > 0]


def phase_banner(cfg: TrainConfig, index: int, total: int, phase: str, epochs: int) -> str:
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


def fit_phases(cfg, model, work, datasets: TrainingData, jit, extra):
    """Runs each unfinished phase; returns ``{phase: epochs run}``.

    A phase that finished in an earlier run is skipped, and the model continues from
    (or, after the last phase, ends with) that phase's final weights, so a rerun never
    exports or evaluates an untrained model.
    """
    state_path = work / STATE_FILE
    state = read_state(state_path)
    completed: dict[str, int] = state.setdefault("completed", {})
    phases = phases_of(cfg)
    offset = 0
    previous_end: Path | None = None
    for index, (phase, epochs, learning_rate) in enumerate(phases, start=1):
        phase_end = end_weights(work, phase)
        if phase == "fine_tune":
            models.set_fine_tune(model, cfg.fine_tune_fraction)
        damaged = weights_problem(phase_end) if phase in completed and phase_end.is_file() else ""
        if damaged:  # cut short by a kill: the phase runs again
            say(cfg, f"== phase {phase}: its final weights are unreadable ({damaged}): run again")
            completed.pop(phase)
        if phase in completed and phase_end.is_file():
            say(cfg, f"== phase {index}/{len(phases)}: {phase} finished earlier, skipped")
            offset += completed[phase]
            previous_end = phase_end
            continue
        if previous_end is not None:  # continue from the previous phase's final weights
            load_weights(model, str(previous_end))
        say(cfg, phase_banner(cfg, index, len(phases), phase, epochs))
        if phase == "head" and datasets.plain_train is not None:
            fit_head_on_features(cfg, model, work, datasets, jit, extra)
            model.save_weights(str(work / BEST_WEIGHTS))
        else:
            # With device augmentation the training step applies XLA itself (around
            # all but the augmentation, which has no XLA kernels): see augmentation.py.
            model_jit = jit and datasets.augment_on != AUGMENT_DEVICE
            backup = backup_folder(work, phase)
            problem = backup_problem(backup)
            if problem:  # a kill while Keras wrote it: the phase restarts from its start
                say(cfg, f"== phase {phase}: its backup is unreadable ({problem}): not restored")
                shutil.rmtree(backup)
            lr = schedule(cfg, learning_rate, datasets.steps * epochs)
            compile_model(model, cfg, lr, model_jit)
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
                callbacks=phase_callbacks(work, phase, cfg, extra),
                verbose=cfg.verbose,
            )
            check_finite(work, phase)
            if (work / BEST_WEIGHTS).is_file():
                load_weights(model, str(work / BEST_WEIGHTS))
        model.save_weights(str(phase_end))
        completed[phase] = finished_epochs(work, phase)
        offset += completed[phase]
        atomic_write(state_path, json.dumps(state, indent=2))
        previous_end = phase_end
    if previous_end is not None:
        load_weights(model, str(previous_end))  # the final weights, also when all were skipped
    return completed
