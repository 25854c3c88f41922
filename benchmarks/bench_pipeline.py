"""Benchmarks 1 and 2: the input pipeline and the training feed.

1. Images per second delivered, no model: the article's loader (``load_img`` in a
   Python loop, then ``np.vstack``) vs our ``tf.data`` pipeline's first epoch
   (decode + resize + cache fill) vs its later epochs (from the cache) vs a ceiling
   (one batch, ``take(1).cache().repeat()``).
2. Training steps per second of the same model fed by our pipeline vs by the ceiling
   dataset, after the first epoch: how close the input comes to never being the
   bottleneck.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks.common import Row, Section, timed, verdict
from logo_batch.augment import make_augment_fn
from logo_batch.data import load_split, make_dataset


def article_loader(paths: Sequence[Path], image_size: int) -> np.ndarray:
    """The article's loader: one ``load_img`` per file in a Python loop, then vstack."""
    from keras.utils import img_to_array, load_img

    arrays = []
    for path in paths:
        image = load_img(path, target_size=(image_size, image_size))
        arrays.append(np.expand_dims(img_to_array(image), axis=0))
    return np.vstack(arrays)


def count_images(ds: tf.data.Dataset, max_batches: int | None = None) -> int:
    """Iterates a batched dataset (the work is done), returning how many images it gave."""
    total = 0
    for i, batch in enumerate(ds):
        if max_batches is not None and i >= max_batches:
            break
        total += int(batch[0].shape[0])
    return total


def training_pipeline(
    data_dir: Path, config: str, image_size: int, batch_size: int, augment: bool = True
):
    """The trainer's training input: the same library calls the trainer makes."""
    split = load_split(data_dir, config, "train")
    ds = make_dataset(
        split.records,
        image_size=image_size,
        batch_size=batch_size,
        training=True,
        num_classes=len(split.logo_class_names),
        cache="memory",
        augment=make_augment_fn() if augment else None,
        seed=0,
    )
    return split, ds


def bench_input(
    data_dir: Path, config: str, image_dir: Path, image_size: int, batch_size: int, epochs: int
) -> Section:
    """Benchmark 1: images per second delivered by each loader."""
    _, ds = training_pipeline(data_dir, config, image_size, batch_size, augment=False)
    _, augmented = training_pipeline(data_dir, config, image_size, batch_size)
    filenames = [f.decode() for f in load_split_filenames(data_dir, config, "train")]
    paths = [image_dir / name for name in filenames]
    section = Section(
        f"1. Input pipeline ({config} train split, {len(paths)} images, {image_size} px)"
    )

    t_article, array = timed(lambda: article_loader(paths, image_size))
    article = len(paths) / t_article
    t_first, n_first = timed(lambda: count_images(ds))
    first = n_first / t_first
    later = []
    for _ in range(max(1, epochs - 1)):
        t, n = timed(lambda: count_images(ds))
        later.append(n / t)
    cached = float(np.median(later))
    count_images(augmented)  # fills its cache
    t_aug, n_aug = timed(lambda: count_images(augmented))
    ceiling_ds = ds.take(1).cache().repeat()
    count_images(ceiling_ds, 2)  # fills the one-batch cache
    t_ceiling, n_ceiling = timed(lambda: count_images(ceiling_ds, -(-n_first // batch_size)))
    ceiling = n_ceiling / t_ceiling

    mib = array.nbytes / 2**20
    section.rows = [
        Row("article loader (load_img loop + np.vstack)", article, "img/s", 1.0, "baseline",
            f"holds all {mib:.0f} MiB in one array"),
        Row("tf.data, first epoch (decode + resize + cache fill)", first, "img/s",
            first / article, "article"),
        Row("tf.data, cached epochs (median)", cached, "img/s", cached / article, "article"),
        Row("tf.data, cached epoch + augmentation (as training runs)", n_aug / t_aug, "img/s",
            n_aug / t_aug / article, "article", "augmentation is compute, per epoch"),
        Row("ceiling: take(1).cache().repeat()", ceiling, "img/s", ceiling / article,
            "article"),
    ]  # fmt: skip
    section.targets = [
        f"target cached epochs >= 20x article: {verdict(cached >= 20 * article)}",
        f"target first epoch >= 2x article: {verdict(first >= 2 * article)}",
    ]
    return section


def load_split_filenames(data_dir: Path, config: str, split: str) -> list[bytes]:
    """The source file names of a split, in record order (for the article's loader)."""
    import tensorflow_datasets as tfds

    from tfds_flickr27 import DATASET_NAME  # importing it registers the builder

    builder = tfds.builder(f"{DATASET_NAME}/{config}", data_dir=str(data_dir))
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    return [ex["filename"] for ex in ds.as_numpy_iterator()]


class _EpochTimer(tf.keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds: list[float] = []

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.perf_counter() - self._start)


def bench_feed(
    data_dir: Path, config: str, image_size: int, batch_size: int, epochs: int, backbone: str
) -> Section:
    """Benchmark 2: training steps per second, our pipeline vs the ceiling dataset."""
    import keras

    from logo_batch.models import build_model

    split, ds = training_pipeline(data_dir, config, image_size, batch_size)
    steps = -(-split.num_examples // batch_size)
    ceiling = ds.take(1).cache().repeat()

    def steps_per_second(dataset, steps_per_epoch=None) -> tuple[float, float]:
        keras.utils.set_random_seed(0)
        model = build_model(backbone, len(split.logo_class_names), image_size, weights="none")
        model.compile(
            keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"]
        )
        timer = _EpochTimer()
        model.fit(
            dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0, callbacks=[timer]
        )
        first = steps / timer.seconds[0]
        later = steps / float(np.median(timer.seconds[1:]))
        return first, later

    ours_first, ours_later = steps_per_second(ds)
    _, ceiling_later = steps_per_second(ceiling, steps)
    section = Section(
        f"2. Training feed ({backbone}, frozen base + head, {image_size} px, batch {batch_size}, "
        f"{steps} steps/epoch)"
    )
    section.rows = [
        Row("ceiling dataset, epochs 2+", ceiling_later, "steps/s", 1.0, "baseline"),
        Row(
            "our pipeline, epoch 1 (decode + cache fill)",
            ours_first,
            "steps/s",
            ours_first / ceiling_later,
            "ceiling",
        ),
        Row(
            "our pipeline, epochs 2+ (cached)",
            ours_later,
            "steps/s",
            ours_later / ceiling_later,
            "ceiling",
        ),
    ]
    met = ours_later >= 0.9 * ceiling_later
    section.targets = [f"target epochs 2+ >= 0.9 x ceiling: {verdict(met)}"]
    return section
