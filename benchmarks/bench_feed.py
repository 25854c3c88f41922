"""Benchmark 2: the training feed, like with like.

Training steps per second of the model as the trainer trains it, fed by our pipeline
(:mod:`benchmarks.bench_pipeline`) with each augmentation (Keras layers and fused),
without augmentation, by ``fit`` on the article's NumPy arrays and by the ceiling
dataset, after the first epoch (every step a full batch: the pipelines repeated as the
trainer's, the arrays cut to whole batches), in both phases: the head on a frozen base
(pretrained-style base: not trainable, BatchNorm in inference mode) and fine-tuning (top
half of the base trainable, learning rate 1e-4).
"""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks.bench_pipeline import (
    AUGMENTATIONS,
    article_inputs,
    article_loader,
    training_pipeline,
)
from benchmarks.common import Row, Section, verdict
from logo_batch.training.augment import FUSED, LAYERS

FINE_TUNE_FRACTION = 0.5  # the trainer's default
FINE_TUNE_LEARNING_RATE = 1e-4


class _EpochTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def base_weights_file(work: Path, backbone: str, image_size: int) -> Path:
    """A base weights file for the backbone (random values: the cost is the same as
    ImageNet's), so the model is built the way a pretrained one is: frozen base,
    BatchNorm in inference mode."""
    from logo_batch.training.models import build_backbone

    path = work / f"{backbone}_{image_size}_base.weights.h5"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        build_backbone(backbone, image_size, "none").save_weights(str(path))
    return path


def bench_feed(
    data_dir: Path,
    config: str,
    image_dir: Path,
    image_size: int,
    batch_size: int,
    epochs: int,
    backbone: str,
    work: Path,
) -> Section:
    """Benchmark 2: training steps per second in each phase, each feed vs the ceiling."""
    import warnings

    import keras

    from logo_batch.training.models import build_model, set_fine_tune

    # Keras says this at the end of every epoch of a dataset of unknown length (the
    # epochs still have all their steps).
    warnings.filterwarnings("ignore", message="Your input ran out of data")

    # Like with like: every step of every feed is a full batch. The pipelines stream as
    # the trainer's do (repeated, full batches), the arrays are cut to whole batches and
    # the ceiling repeats one full batch; an epoch is the same `steps` everywhere.
    pipeline = partial(training_pipeline, data_dir, config, image_size, batch_size, repeat=True)
    split, plain = pipeline(augment=False)
    feeds = {method: pipeline(augmentation=method)[1] for method in AUGMENTATIONS}
    num_classes = len(split.logo_class_names)
    paths, labels = article_inputs(data_dir, config, image_dir, num_classes)
    steps = len(labels) // batch_size
    whole = steps * batch_size
    array, labels = article_loader(paths[:whole], image_size), labels[:whole]
    ceiling = plain.take(1).cache().repeat()
    weights = base_weights_file(work, backbone, image_size)

    def rates(phase: str, data, steps_per_epoch=None, **fit_args) -> tuple[float, float]:
        """(epoch 1, median of epochs 2+) steps/s of a fresh model in ``phase``."""
        keras.utils.set_random_seed(0)
        model = build_model(backbone, num_classes, image_size, weights=str(weights))
        learning_rate = 1e-3
        if phase == "fine_tune":
            set_fine_tune(model, FINE_TUNE_FRACTION)
            learning_rate = FINE_TUNE_LEARNING_RATE
        model.compile(
            keras.optimizers.Adam(learning_rate),
            "sparse_categorical_crossentropy",
            metrics=["accuracy"],
        )
        timer = _EpochTimer()
        model.fit(
            data,
            epochs=epochs,
            steps_per_epoch=steps_per_epoch,
            verbose=0,
            callbacks=[timer],
            **fit_args,
        )
        return steps / timer.seconds[0], steps / float(np.median(timer.seconds[1:]))

    # Each phase's ceiling is measured before and after its pipelines, and the ratios
    # use the mean: a shared machine's speed drifts over minutes (both are reported).
    head_before = rates("head", ceiling, steps)[1]
    head = {method: rates("head", ds, steps) for method, ds in feeds.items()}  # (epoch 1, 2+)
    head_plain = rates("head", plain, steps)[1]
    head_numpy = rates("head", array, y=labels, batch_size=batch_size, shuffle=True)[1]
    head_after = rates("head", ceiling, steps)[1]
    tune_before = rates("fine_tune", ceiling, steps)[1]
    tune = {method: rates("fine_tune", ds, steps)[1] for method, ds in feeds.items()}
    tune_after = rates("fine_tune", ceiling, steps)[1]
    head_ceiling, tune_ceiling = (head_before + head_after) / 2, (tune_before + tune_after) / 2

    def drift(before: float, after: float) -> str:
        return f"mean of {before:.2f} before and {after:.2f} after the pipelines"

    section = Section(
        f"2. Training feed ({backbone}, {image_size} px, batch {batch_size}, {steps} "
        f"steps/epoch): head on a frozen base, then fine-tuning"
    )
    phase_head = "head phase (base frozen, BatchNorm inference)"
    phase_tune = f"fine-tune phase (top {FINE_TUNE_FRACTION:.0%} of the base trainable)"

    def vs_layers(method: str, rate: float, layers_rate: float) -> str:
        return "" if method == LAYERS else f"{rate / layers_rate:.2f}x the Keras layers"

    rows = [Row(f"{phase_head}: ceiling dataset, epochs 2+", head_ceiling, "steps/s", 1.0,
                "baseline", drift(head_before, head_after))]  # fmt: skip
    for method, label in AUGMENTATIONS.items():
        first, later = head[method]
        rows += [
            Row(f"{phase_head}: our pipeline + {label}, epoch 1 (decode + cache fill)", first,
                "steps/s", first / head_ceiling, "ceiling"),
            Row(f"{phase_head}: our pipeline + {label}, epochs 2+ (as training runs)", later,
                "steps/s", later / head_ceiling, "ceiling",
                vs_layers(method, later, head[LAYERS][1])),
        ]  # fmt: skip
    rows += [
        Row(f"{phase_head}: our pipeline, no augmentation, epochs 2+", head_plain, "steps/s",
            head_plain / head_ceiling, "ceiling",
            f"{head_plain / head_numpy:.2f}x fit on the article's arrays"),
        Row(f"{phase_head}: fit on the article's NumPy arrays (no augmentation), epochs 2+",
            head_numpy, "steps/s", head_numpy / head_ceiling, "ceiling"),
        Row(f"{phase_tune}: ceiling dataset, epochs 2+", tune_ceiling, "steps/s", 1.0,
            "baseline", drift(tune_before, tune_after)),
    ]  # fmt: skip
    for method, label in AUGMENTATIONS.items():
        rate = tune[method]
        rows.append(
            Row(f"{phase_tune}: our pipeline + {label}, epochs 2+ (as training runs)", rate,
                "steps/s", rate / tune_ceiling, "ceiling", vs_layers(method, rate, tune[LAYERS]))
        )  # fmt: skip
    section.rows = rows
    head_fused, head_layers = head[FUSED][1] / head_ceiling, head[LAYERS][1] / head_ceiling
    tune_fused, tune_layers = tune[FUSED] / tune_ceiling, tune[LAYERS] / tune_ceiling
    section.targets = [
        f"target head phase, epochs 2+ >= 0.9 x ceiling, fused augmentation: "
        f"{verdict(head_fused >= 0.9)} ({head_fused:.2f}; with the Keras layers, the recipe "
        f"before: {head_layers:.2f})",
        f"target fine-tune phase, epochs 2+ >= 0.9 x ceiling, fused augmentation: "
        f"{verdict(tune_fused >= 0.9)} ({tune_fused:.2f}; with the Keras layers, the recipe "
        f"before: {tune_layers:.2f})",
    ]
    section.notes = [
        "The base is built as a pretrained one is (a weights file, here random values: "
        "same cost), so the head phase trains the head only and fine-tuning the top half "
        "of the base, as `logo-batch train` does (its default head phase fits a linear "
        "probe on features computed once instead, see README). The ceiling repeats one "
        "cached batch: no input cost, no augmentation. Every step is a full batch: the "
        "pipelines repeat as the trainer's do, the arrays are cut to whole batches. "
        "Augmentation on the CPU in tf.data, as `--augment-on cpu`: the Keras layers "
        "(`--augmentation layers`, the recipe before) and the fused warp + colour "
        "matrix (`--augmentation fused`), same strengths; the targets are held to the "
        "fused one."
    ]
    return section
