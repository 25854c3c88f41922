"""Shared by the training tests: a tiny, fast configuration and recording callbacks."""

from __future__ import annotations

import keras

from logo_batch.training import TrainConfig


def tiny_config(data_dir, output_dir, **overrides) -> TrainConfig:
    """A tiny CNN at 32 px on the synthetic dataset: seconds per run."""
    values = dict(
        data_dir=str(data_dir),
        output_dir=str(output_dir),
        backbone="tiny_cnn",
        weights="none",
        image_size=32,
        epochs=8,
        fine_tune_epochs=2,
        batch_size=32,
        learning_rate=3e-3,
        fine_tune_learning_rate=1e-3,
        export_serving=False,
        verbose=0,
        # float32 whatever this CPU offers: `auto` picks mixed_bfloat16 on CPUs with
        # AVX-512 BF16 or AMX, and a test must not change with the machine's kernels
        # (tests of `auto` set it and patch the CPU's features).
        mixed_precision="off",
        # The crops alone unless a test asks for the photo recipe's windows: most
        # training tests are about the trainer, not the recipe.
        background=0,
        context=0,
    )
    values.update(overrides)
    return TrainConfig(**values)


class Record(keras.callbacks.Callback):
    """Records the epochs a run starts and what the compiled model looks like."""

    def __init__(self):
        super().__init__()
        self.epochs: list[int] = []
        self.seen: dict = {}

    def on_train_begin(self, logs=None):
        self.seen = {
            "jit_compile": self.model.jit_compile,
            "policy": self.model.dtype_policy.name,
            "optimizer": type(self.model.optimizer).__name__,
        }

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


class Interrupt(keras.callbacks.Callback):
    """Simulates a crash at the end of one epoch (after the epoch's backup)."""

    def __init__(self, at_epoch: int):
        super().__init__()
        self.at_epoch = at_epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.at_epoch:
            raise KeyboardInterrupt(f"killed after epoch {epoch}")
