"""The head phase as a linear probe on pooled features of the frozen base (LP of LP-FT)."""

from __future__ import annotations

import math
import time

import keras
import tensorflow as tf

from logo_batch.data import pipeline as data_lib
from logo_batch.training.datasets import TrainingData
from logo_batch.training.fitting import compile_model, say, schedule, tensorboard_callbacks
from logo_batch.training.run_folder import HISTORY_FILE, HistoryCSV, check_finite


def pooled_features(
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


def fit_head_on_features(cfg, model, work, datasets: TrainingData, jit, extra):
    """The head phase as a linear probe on pooled features computed once (see
    :func:`head_phase_on_features`); the head layers are shared with ``model``.

    Features are batched like images: training repeats then takes full batches,
    validation is padded with zero-weight examples, so a distribution strategy never
    gives a replica an empty batch.
    """
    pool = model.get_layer("head_pool")
    extractor = keras.Model(model.input, pool.output)
    started = time.perf_counter()
    say(cfg, "features of the training images (frozen base, once):")
    verbose = cfg.verbose != 0
    train_x, train_y = pooled_features(extractor, datasets.plain_train, verbose=verbose)
    say(cfg, "features of the validation images:")
    val_x, val_y = pooled_features(
        extractor, datasets.validation, datasets.validation_steps, verbose
    )
    say(
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
    compile_model(head, cfg, schedule(cfg, cfg.learning_rate, steps * cfg.epochs), jit)
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
            *tensorboard_callbacks(work / "logs"),
            *extra,
        ],
        verbose=cfg.verbose,
    )
    check_finite(work, "head")
