"""Every batch is full under a distribution strategy, and validation metrics stay exact.

Splits are sliced to k*B+1 examples (TFDS slicing), so these tests do not depend on
how many examples the generated dataset happens to put in each split.
"""

from __future__ import annotations

import types

import keras
import numpy as np
import pytest
import tensorflow as tf
from training_support import tiny_config

from logo_batch.data import pipeline as data
from logo_batch.training import TrainConfig, distribute, train
from logo_batch.training.datasets import build_datasets
from logo_batch.training.fitting import compile_model

BATCH = 16


def _config(data_dir, tmp_path, **overrides) -> TrainConfig:
    """Splits of k*B+1 examples: the last batch of each would hold one example."""
    values = dict(
        batch_size=BATCH,
        train_split=f"train[:{2 * BATCH + 1}]",
        validation_split=f"validation[:{BATCH + 1}]",
    )
    return tiny_config(data_dir, tmp_path, **{**values, **overrides}).resolved()


def test_training_batches_are_full_and_validation_is_padded_exactly(synthetic_data_dir, tmp_path):
    cfg = _config(synthetic_data_dir, tmp_path)
    datasets = build_datasets(cfg, distribute.task_info(), replicas=2)
    assert datasets.steps == 3 and datasets.validation_steps == 2
    images, labels = datasets.train.element_spec
    assert images.shape[0] == BATCH and labels.shape[0] == BATCH  # static: XLA compiles once
    for batch_images, _ in datasets.train.take(2 * datasets.steps):
        assert batch_images.shape[0] == BATCH
    batches = list(datasets.validation.take(datasets.validation_steps))
    assert [int(images.shape[0]) for images, _, _ in batches] == [BATCH, BATCH]
    weights = np.concatenate([w.numpy() for _, _, w in batches])
    real = weights > 0
    assert real.sum() == BATCH + 1  # every validation example, once
    assert np.allclose(weights[real], 2 * BATCH / (BATCH + 1)) and weights[~real].sum() == 0
    expected = data.split_labels(
        data.load_split(synthetic_data_dir, "crops", f"validation[:{BATCH + 1}]").records
    )
    labels = np.concatenate([y.numpy().argmax(1) for _, y, _ in batches])[real]
    assert labels.tolist() == expected.tolist()


def test_zero_weight_padding_keeps_keras_metrics_exact():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(BATCH + 1, 5)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, BATCH + 1), 3).astype("float32")
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.Input((5,)), keras.layers.Dense(3, activation="softmax")])
    compile_model(model, types.SimpleNamespace(label_smoothing=0.1), 1e-3, jit=False)
    plain = model.evaluate(x, y, batch_size=BATCH, verbose=0, return_dict=True)
    padded_ds = data.pad_with_zero_weights(
        tf.data.Dataset.from_tensor_slices((x, y)), BATCH + 1, BATCH
    ).batch(BATCH, drop_remainder=True)
    padded = model.evaluate(padded_ds, verbose=0, return_dict=True)
    assert padded["accuracy"] == pytest.approx(plain["accuracy"], abs=1e-6)
    assert padded["top5_accuracy"] == pytest.approx(plain["top5_accuracy"], abs=1e-6)
    assert padded["loss"] == pytest.approx(plain["loss"], rel=1e-5)


def test_a_global_batch_not_divisible_by_the_replicas_is_a_clear_error(
    synthetic_data_dir, tmp_path, monkeypatch
):
    strategy = types.SimpleNamespace(num_replicas_in_sync=3)
    monkeypatch.setattr(distribute, "make_strategy", lambda name: strategy)
    config = _config(synthetic_data_dir, tmp_path / "run")
    with pytest.raises(ValueError, match="--batch-size 16 .* divisible by the 3 replicas"):
        train(config)
