"""``--augment-on``: augmentation in the tf.data pipeline (cpu) or in the training step
(device); the model, its checkpoints and its bundle are the plain classifier either way."""

from __future__ import annotations

import argparse

import keras
import numpy as np
import pytest
import tensorflow as tf
from training_support import Interrupt, Record, tiny_config

from logo_batch.cli.train import configure_parser
from logo_batch.data import pipeline as data
from logo_batch.inference.bundle import load_bundle
from logo_batch.inference.predict import predict_files
from logo_batch.training import distribute, models, train
from logo_batch.training.augment import build_augmenter
from logo_batch.training.augmentation import augment_in_train_step, run_augmentation
from logo_batch.training.config import resolve_augment_on
from logo_batch.training.datasets import build_datasets
from logo_batch.training.run_folder import end_weights

BATCH = 16
SHORT = dict(epochs=1, fine_tune_epochs=1, steps_per_epoch=2)


def test_where_augmentation_runs(tmp_path):
    cfg = tiny_config(tmp_path, tmp_path)
    assert resolve_augment_on(cfg, gpu=True) == "device"  # auto
    assert resolve_augment_on(cfg, gpu=False) == "cpu"
    cfg.augment_on = "cpu"
    assert resolve_augment_on(cfg, gpu=True) == "cpu"
    cfg.augment_on = "device"
    assert resolve_augment_on(cfg, gpu=False) == "device"
    cfg.augment = False
    assert resolve_augment_on(cfg, gpu=True) is None
    cfg.augment_on = "gpu"
    with pytest.raises(ValueError, match="--augment-on must be one of auto, cpu, device"):
        cfg.validate()
    parser = argparse.ArgumentParser()
    configure_parser(parser)
    base = ["--data-dir", "d", "--output-dir", "o"]
    assert parser.parse_args(base).augment_on == "auto"
    assert parser.parse_args([*base, "--augment-on", "device"]).augment_on == "device"


def test_augmentation_computes_in_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy().name
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        augmenter = build_augmenter(seed=0)
        assert {layer.compute_dtype for layer in augmenter.layers} == {"float32"}
        out = augmenter(tf.fill((2, 32, 32, 3), 100.0), training=True)
        assert out.dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)


def _hashes(images: np.ndarray) -> set[bytes]:
    return {image.tobytes() for image in images}


def test_device_pipeline_delivers_unaugmented_batches(synthetic_data_dir, tmp_path):
    cfg = tiny_config(
        synthetic_data_dir, tmp_path, batch_size=BATCH, train_split=f"train[:{2 * BATCH}]"
    ).resolved()
    task = distribute.task_info()
    split = data.load_split(synthetic_data_dir, "crops", cfg.train_split)
    plain = data.make_dataset(
        split.records, image_size=32, batch_size=BATCH, num_classes=27, cache="none"
    )
    originals = _hashes(np.concatenate([images.numpy() for images, _ in plain]))
    assert len(originals) == 2 * BATCH
    batches = {}
    for where in ("cpu", "device"):
        datasets = build_datasets(cfg, task, 1, where)
        assert datasets.augment_on == where
        batches[where] = np.concatenate([x.numpy() for x, _ in datasets.train.take(2)])
    # Decoded, never augmented: every image is one of the originals. Not necessarily all
    # of them: 1 run in 8 here, the repeated, shuffled stream began its second pass over
    # the split before its first had given every image (a set-equality check flaked).
    assert len(batches["device"]) == 2 * BATCH
    assert _hashes(batches["device"]) <= originals
    assert not _hashes(batches["cpu"]) & originals  # every image augmented in tf.data


class Capture(keras.layers.Layer):
    """Identity that keeps the last batch it saw in training and in inference."""

    def build(self, shape):
        zeros = {"shape": shape, "initializer": "zeros", "trainable": False}
        self.in_training = self.add_weight(name="in_training", **zeros)
        self.in_inference = self.add_weight(name="in_inference", **zeros)

    def call(self, x, training=False):
        (self.in_training if training else self.in_inference).assign(x)
        return x


@pytest.mark.parametrize("jit", [False, True], ids=["eager_graph", "xla"])
def test_the_training_step_augments_and_inference_does_not(jit, tmp_path):
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (BATCH, 32, 32, 3)).astype("float32")
    y = keras.utils.to_categorical(rng.integers(0, 3, BATCH), 3).astype("float32")
    capture = Capture()
    inputs = keras.Input((32, 32, 3), batch_size=BATCH)
    hidden = keras.layers.GlobalAveragePooling2D()(capture(inputs))
    model = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(hidden))
    weights_before = [w.path for w in model.weights]
    config_before = model.get_config()
    cfg = tiny_config(tmp_path, tmp_path, blur=0.5)
    assert augment_in_train_step(model, run_augmentation(cfg), jit=jit) is jit
    for trainable in (True, False):  # a phase change: new optimizer, other variables
        model.layers[-1].trainable = trainable
        model.compile(optimizer="adam", loss="categorical_crossentropy", jit_compile=False)
        before = model.layers[-1].get_weights()
        model.fit(x, y, batch_size=BATCH, epochs=1, shuffle=False, verbose=0)
        after = model.layers[-1].get_weights()
        changed = [not np.array_equal(a, b) for a, b in zip(before, after, strict=True)]
        assert all(changed) if trainable else not any(changed)
    seen = capture.in_training.numpy()
    assert seen.shape == x.shape and seen.dtype == np.float32
    assert 0.0 <= seen.min() and seen.max() <= 255.0
    # each image augmented
    assert all(not np.array_equal(a, b) for a, b in zip(seen, x, strict=True))
    model.evaluate(x, y, batch_size=BATCH, verbose=0)
    np.testing.assert_array_equal(capture.in_inference.numpy(), x)  # inference: identity
    assert model.predict(x, batch_size=BATCH, verbose=0).shape == (BATCH, 3)
    # Nothing was added to the model: same weights, same configuration, no augmenter.
    model.layers[-1].trainable = True
    assert [w.path for w in model.weights] == weights_before
    assert model.get_config() == config_before


def _no_augmentation_layers(model: keras.Model) -> bool:
    return not any(
        type(layer).__name__.startswith("Random")
        for layer in model._flatten_layers(include_self=True, recursive=True)
    )


@pytest.mark.parametrize("where", ["cpu", "device"])
def test_short_run_end_to_end(where, synthetic_data_dir, tmp_path):
    result = train(tiny_config(synthetic_data_dir, tmp_path, augment_on=where, **SHORT))
    bundle = load_bundle(result.bundle_dir)
    assert bundle.metadata.training["augment_on"] == where
    assert bundle.metadata.training["config"]["augment_on"] == where
    assert np.isfinite(result.history["loss"]).all()
    assert _no_augmentation_layers(bundle.model)
    # The bundle and the checkpoints hold exactly the classifier's weights.
    classifier = models.build_model("tiny_cnn", 27, 32, "none")
    assert [w.shape for w in bundle.model.weights] == [w.shape for w in classifier.weights]
    classifier.load_weights(str(end_weights(tmp_path, "fine_tune")))
    for loaded, exported in zip(classifier.get_weights(), bundle.model.get_weights(), strict=True):
        np.testing.assert_array_equal(loaded, exported)
    test = data.load_split(synthetic_data_dir, "crops", "test")
    paths = []
    for i, (jpeg, _) in enumerate(test.records.take(3)):
        paths.append(tmp_path / f"sample{i}.jpg")
        paths[-1].write_bytes(jpeg.numpy())
    rows = predict_files(bundle, paths, top_k=1)
    assert len(rows) == 3 and all(row.top_labels[0] in bundle.metadata.class_names for row in rows)


def test_a_device_run_resumes_with_cpu_augmentation(synthetic_data_dir, tmp_path):
    """Checkpoints (weights and optimizer state) are the classifier's whichever the
    choice: a run interrupted with device augmentation resumes on the CPU path."""
    config = tiny_config(
        synthetic_data_dir, tmp_path, epochs=1, fine_tune_epochs=2, steps_per_epoch=2
    )
    config.augment_on = "device"
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Interrupt(at_epoch=1)])  # in fine-tuning
    config.augment_on = "cpu"
    record = Record()
    result = train(config, callbacks=[record])
    assert record.epochs == [2]  # resumed after epoch 1
    assert result.phases == {"head": 1, "fine_tune": 2}
    assert load_bundle(result.bundle_dir).metadata.training["augment_on"] == "cpu"


@pytest.mark.parametrize(
    ("switch", "expected", "xla_step"),
    [
        ({"mixed_precision": "on"}, {"policy": "mixed_float16", "jit_compile": False}, False),
        # XLA compiles the step around the augmentation, not the whole model.fit step.
        ({"xla": "on"}, {"policy": "float32", "jit_compile": False}, True),
    ],
)
def test_device_augmentation_with_mixed_precision_and_xla(
    synthetic_data_dir, tmp_path, switch, expected, xla_step
):
    record = Record()
    config = tiny_config(
        synthetic_data_dir,
        tmp_path,
        augment_on="device",
        epochs=1,
        fine_tune_epochs=0,  # one compile (phase changes: the training-step test)
        steps_per_epoch=2,
        **switch,
    )
    result = train(config, callbacks=[record])
    assert expected.items() <= record.seen.items()
    assert np.isfinite(result.history["loss"]).all()
    training = load_bundle(result.bundle_dir).metadata.training
    assert training["augment_on"] == "device" and training["xla_train_step"] is xla_step
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
