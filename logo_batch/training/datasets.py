"""The tf.data pipelines of a run: training, validation, and the frozen-feature input."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

import numpy as np
import tensorflow as tf

from logo_batch.data import background, context, grid_windows, paste
from logo_batch.data import pipeline as data_lib
from logo_batch.inference.preprocessing import decode_image_tf
from logo_batch.training import distribute
from logo_batch.training.augmentation import run_augmentation
from logo_batch.training.config import AUGMENT_CPU, TrainConfig, head_phase_on_features
from tfds_flickr27 import NONE_LABEL


@dataclass(frozen=True)
class TrainingData:
    """The datasets of a run and how many steps make an epoch of each."""

    splits: dict[str, data_lib.SplitInfo]
    class_names: list[str]  # what the model predicts: the brands (+ the background class)
    background_class: str | None  # the last class when windows with no logo are learned
    train: tf.data.Dataset  # repeated, shuffled full batches (augmented if augment_on cpu)
    validation: tf.data.Dataset  # full batches, zero-weight padding at the end
    plain_train: tf.data.Dataset | None  # un-augmented, for the head's features
    steps: int
    validation_steps: int
    augment_on: str | None = AUGMENT_CPU  # where training augments: cpu, device or None


def build_datasets(
    cfg: TrainConfig,
    task: distribute.TaskInfo,
    replicas: int,
    augment_on: str | None = AUGMENT_CPU,
) -> TrainingData:
    """The run's pipelines; the training batches are augmented here only when
    ``augment_on`` is ``cpu`` (``device``: the training step augments them)."""
    splits = {
        name: data_lib.load_split(cfg.data_dir, cfg.config, split, dataset=cfg.dataset)
        for name, split in (
            ("train", cfg.train_split),
            ("validation", cfg.validation_split),
            ("test", cfg.test_split),
        )
    }
    train_info = splits["train"]
    brands = train_info.logo_class_names
    photo_options = [
        f"--{name.replace('_', '-')}"
        for name in ("background", "context", "paste", "grid_windows")
        if getattr(cfg, name)
    ]
    if photo_options and not data_lib.has_photos(cfg.data_dir, cfg.dataset):
        raise ValueError(
            f"{cfg.data_dir}: {cfg.dataset} has no photos ({cfg.dataset}/images is not "
            f"prepared), and {', '.join(photo_options)} cut training windows from photos "
            "with boxes: add photos/ and boxes.csv to the folder and build it again, or "
            "train on the crops alone with --crops-only"
        )
    background_class = NONE_LABEL if cfg.background else None
    class_names = [*brands, *([background_class] if background_class else [])]
    num_classes = len(class_names)
    cache = cfg.cache
    if cache not in (data_lib.CACHE_MEMORY, data_lib.CACHE_NONE) and not task.is_chief:
        cache = os.path.join(cache, task.name)  # workers must not share file caches
    counts = {}  # examples per split, by label (labels only are read)
    extra: dict[str, tf.data.Dataset | None] = {"train": None, "validation": None}
    for offset, name in enumerate(("train", "validation")):
        labels = data_lib.split_labels(splits[name].records)
        labels = labels[labels < len(brands)]
        if not labels.size:
            raise ValueError(f"{cfg.data_dir}: split {splits[name].split!r} has no logo examples")
        if background_class:  # windows with no logo from the same split's photos, class "none"
            photos = data_lib.load_photos(
                cfg.data_dir, splits[name].split.split("[", 1)[0], dataset=cfg.dataset
            )
            seed = cfg.seed + offset
            found = background.count_background_windows(photos, cfg.background, seed)
            extra[name] = background.background_windows(
                photos, cfg.image_size, cfg.background, len(brands), seed
            )
            labels = np.concatenate([labels, np.full(found, len(brands))])
        if name == "train":
            paced = labels.size  # the crops and background windows: one pass is an epoch
        if cfg.context:  # logo windows with context around each box of the split's photos
            photos = data_lib.load_boxed_photos(
                cfg.data_dir,
                data_lib.split_filenames(
                    cfg.data_dir, cfg.config, splits[name].split, dataset=cfg.dataset
                ),
                dataset=cfg.dataset,
            )
            seed = cfg.seed + offset
            coverage = cfg.context_coverage
            found = context.context_labels(photos, cfg.context, seed, coverage)
            windows = context.context_windows(photos, cfg.image_size, cfg.context, seed, coverage)
            extra[name] = windows if extra[name] is None else extra[name].concatenate(windows)
            labels = np.concatenate([labels, found])  # box labels: always brands
        if name == "train" and (cfg.paste or cfg.grid_windows):
            found, windows = _train_only_windows(cfg, splits[name], len(brands), background_class)
            extra[name] = windows if extra[name] is None else extra[name].concatenate(windows)
            labels = np.concatenate([labels, found])
        counts[name] = labels
    weights = data_lib.class_weights(counts["train"], num_classes) if cfg.class_weights else None
    suffix = f"_bg{cfg.background}" if background_class else ""
    suffix += f"_ctx{cfg.context}" if cfg.context else ""
    if cfg.context and cfg.context_coverage != context.CONTEXT_COVERAGE[0]:
        suffix += f"_cov{cfg.context_coverage:g}"
    train_suffix = suffix + (f"_paste{cfg.paste}" if cfg.paste else "")
    train_suffix += "_grid" if cfg.grid_windows else ""
    common = {
        "image_size": cfg.image_size,
        "batch_size": cfg.batch_size,
        "num_classes": num_classes,
        "one_hot": True,
        "cache": cache,
    }
    if not cfg.augment:
        augment_on = None
    augment = None
    if augment_on == AUGMENT_CPU:
        augment = run_augmentation(cfg)
    train_ds = data_lib.make_dataset(
        train_info.records,
        training=True,
        augment=augment,
        shuffle_buffer=cfg.shuffle_buffer,
        seed=cfg.seed,
        sample_weights=weights,
        cache_name=f"{cfg.config}_{cfg.train_split}{train_suffix}",
        extra=extra["train"],
        repeat=True,  # then full batches only: every replica gets its share
        **common,
    )
    val_ds = data_lib.make_dataset(
        splits["validation"].records,
        cache_name=f"{cfg.config}_{cfg.validation_split}{suffix}",
        extra=extra["validation"],
        pad_to_batches=counts["validation"].size,  # full batches, exact weighted metrics
        **common,
    )
    validation_steps = math.ceil(counts["validation"].size / cfg.batch_size)
    if replicas > 1:  # distributed iterators must not run dry: fixed step counts
        val_ds = val_ds.repeat()
    steps = cfg.steps_per_epoch or steps_per_epoch(paced, counts["train"].size, cfg.batch_size)
    plain_train_ds = None  # un-augmented, uncached: read once for the head's features
    if head_phase_on_features(cfg):
        plain_train_ds = data_lib.make_dataset(
            train_info.records, extra=extra["train"], **{**common, "cache": data_lib.CACHE_NONE}
        )
    return TrainingData(
        splits,
        class_names,
        background_class,
        train_ds,
        val_ds,
        plain_train_ds,
        steps,
        validation_steps,
        augment_on,
    )


def steps_per_epoch(paced: int, total: int, batch_size: int) -> int:
    """Steps of an epoch when ``--steps-per-epoch`` is not given: the whole batches of
    one pass over the crops and background windows (``paced``; 2,150 // 32 = 67 on
    FlickrLogos-27's photo recipe); the logo windows added beside them (context, pasted,
    grid windows) share those steps: more kinds of example, not more steps. Without any
    added window, one pass over the training examples (``total``)."""
    if paced == total:
        return max(1, math.ceil(total / batch_size))
    return max(1, paced // batch_size)


# Seeds of the train-only windows: other draws than the background (seed) and context
# (seed, stream 1) windows of the same photos.
PASTE_SEED_OFFSET = 7919
PASTE_WINDOWS_PER_PHOTO = 4


def _train_only_windows(
    cfg: TrainConfig, train: data_lib.SplitInfo, num_brands: int, background_class: str | None
) -> tuple[np.ndarray, tf.data.Dataset]:
    """The labels and examples of ``--paste`` and ``--grid-windows``: built from the
    training photos only (those whose crops are in the train split), never validation."""
    photos = data_lib.load_boxed_photos(
        cfg.data_dir,
        data_lib.split_filenames(cfg.data_dir, cfg.config, train.split, dataset=cfg.dataset),
        dataset=cfg.dataset,
    )
    labels, parts = [], []
    if cfg.paste:
        crops = train.records.map(
            lambda jpeg, label: (decode_image_tf(jpeg), tf.cast(label, tf.int32)),
            num_parallel_calls=tf.data.AUTOTUNE,
        ).filter(lambda crop, label: label < num_brands)
        clear = background.background_crops(
            photos.map(lambda jpeg, boxes, _: (jpeg, boxes)),
            PASTE_WINDOWS_PER_PHOTO,
            cfg.seed + PASTE_SEED_OFFSET,
        )
        crop_labels = data_lib.split_labels(train.records)
        crop_labels = crop_labels[crop_labels < num_brands]
        labels.append(np.repeat(crop_labels, cfg.paste))
        parts.append(paste.pasted_windows(crops, clear, cfg.image_size, cfg.paste, cfg.seed))
    if cfg.grid_windows:
        # Without a background class the logo-free windows have no label: none kept.
        negatives = 2 if background_class else 0
        grid_label = num_brands if background_class else -1
        labels.append(grid_windows.grid_labels(photos, grid_label, negatives, cfg.seed))
        parts.append(
            grid_windows.grid_examples(photos, cfg.image_size, grid_label, negatives, cfg.seed)
        )
    windows = parts[0]
    for part in parts[1:]:
        windows = windows.concatenate(part)
    return np.concatenate(labels).astype(np.int64), windows
