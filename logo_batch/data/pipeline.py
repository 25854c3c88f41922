"""tf.data input pipelines over the TFDS FlickrLogos-27 splits.

Records are read with their JPEG bytes undecoded, then decoded and resized with the
shared preprocessing (:mod:`logo_batch.inference.preprocessing`) in parallel, cached after that
deterministic work (in memory or in a file cache), shuffled, batched, augmented on
whole batches and prefetched.
"""

from __future__ import annotations

import glob
import math
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tensorflow as tf

from logo_batch.data.prepared import check_split
from logo_batch.inference.preprocessing import PREPROCESSING_ID, decode_and_resize_tf
from tfds_flickr27 import DATASET_NAME, NONE_LABEL

AUTOTUNE = tf.data.AUTOTUNE
CACHE_MEMORY = "memory"
CACHE_NONE = "none"


@dataclass(frozen=True)
class SplitInfo:
    """What a split is: its records and the dataset it came from."""

    records: tf.data.Dataset  # (jpeg_bytes: string, label: int64)
    class_names: list[str]  # every ClassLabel name, ``none`` included
    num_examples: int
    dataset: str
    config: str
    split: str
    version: str

    @property
    def logo_class_names(self) -> list[str]:
        """The classes the model predicts: every label name except ``none``."""
        return [name for name in self.class_names if name != NONE_LABEL]

    @property
    def none_index(self) -> int | None:
        """Label index of the ``none`` class (no logo), if the dataset has one."""
        return self.class_names.index(NONE_LABEL) if NONE_LABEL in self.class_names else None


_HOW_TO_BUILD = (
    f"{DATASET_NAME}: tfds_flickr27.build_dataset; your own logos: "
    "logo-batch dataset build FOLDER --name NAME --data-dir DATA_DIR"
)


def _builder(dataset: str, config: str, data_dir: str | os.PathLike):
    """A TFDS builder for prepared data: ``flickr_logos27`` from its code, any other
    (a folder dataset) from its files alone (TFDS's read-only builder)."""
    import tensorflow_datasets as tfds

    name = f"{dataset}/{config}"
    try:
        builder = tfds.builder(name, data_dir=os.fspath(data_dir))
    except Exception as error:  # noqa: BLE001  (TFDS raises many types here)
        raise FileNotFoundError(
            f"{data_dir}: no prepared TFDS dataset {name!r} ({error}); build it first "
            f"({_HOW_TO_BUILD})"
        ) from error
    if not builder.is_prepared():
        info = os.path.join(os.fspath(builder.data_dir), "dataset_info.json")
        if os.path.isdir(builder.data_dir):  # its files are there, but not its info
            raise FileNotFoundError(
                f"{info}: missing, so {name!r} in {data_dir} is incomplete (a build was "
                f"killed, or the file deleted); build it again ({_HOW_TO_BUILD})"
            )
        raise FileNotFoundError(
            f"{data_dir}: TFDS dataset {name!r} is not prepared there "
            f"(expected {builder.data_dir}); build it first ({_HOW_TO_BUILD})"
        )
    return builder


def has_photos(data_dir: str | os.PathLike, dataset: str = DATASET_NAME) -> bool:
    """Whether ``data_dir`` holds ``dataset/images`` (the photos with their boxes), built
    or damaged (loading a damaged one names what is wrong with it)."""
    try:
        _builder(dataset, "images", data_dir)
    except FileNotFoundError:
        return os.path.isdir(os.path.join(os.fspath(data_dir), dataset, "images"))
    return True


def read_split(builder, split: str, *, shuffle_files: bool = False) -> tf.data.Dataset:
    """A prepared split's examples, images left encoded, its files checked first
    (:func:`logo_batch.data.prepared.check_split`: a missing or truncated shard is a
    :class:`~logo_batch.data.prepared.DatasetError` naming it)."""
    import tensorflow_datasets as tfds

    check_split(builder, split)
    return builder.as_dataset(
        split=split, decoders={"image": tfds.decode.SkipDecoding()}, shuffle_files=shuffle_files
    )


def load_split(
    data_dir: str | os.PathLike,
    config: str,
    split: str,
    *,
    dataset: str = DATASET_NAME,
    shuffle_files: bool = False,
) -> SplitInfo:
    """Reads one TFDS split as ``(jpeg_bytes, label)`` records, images left encoded.

    ``split`` may use TFDS slicing (``train[:100]``, ``validation[:50%]``).
    """

    builder = _builder(dataset, config, data_dir)
    if split.split("[", 1)[0] not in builder.info.splits:
        raise ValueError(
            f"{builder.data_dir}: split {split!r} not in {dataset}/{config} "
            f"(has {sorted(builder.info.splits)})"
        )
    ds = read_split(builder, split, shuffle_files=shuffle_files)
    records = ds.map(lambda ex: (ex["image"], ex["label"]), num_parallel_calls=AUTOTUNE)
    return SplitInfo(
        records=records,
        class_names=list(builder.info.features["label"].names),
        num_examples=int(builder.info.splits[split].num_examples),
        dataset=dataset,
        config=config,
        split=split,
        version=str(builder.info.version),
    )


def decode_and_resize(image_bytes: tf.Tensor, image_size: int) -> tf.Tensor:
    """JPEG bytes to the model input ``float32 [size, size, 3]`` (the shared path: a
    JPEG decoded DCT-downscaled, see :mod:`logo_batch.inference.preprocessing`)."""
    return decode_and_resize_tf(image_bytes, image_size)


def _clear_stale_locks(prefix: str) -> None:
    """Removes lock files a killed process left on its file cache (else TF refuses it)."""
    for lock in glob.glob(glob.escape(prefix) + "*.lockfile"):
        os.remove(lock)


def apply_cache(ds: tf.data.Dataset, cache: str, name: str) -> tf.data.Dataset:
    """``cache`` is ``memory``, ``none`` or a directory for file caches (``name`` inside)."""
    if cache == CACHE_NONE:
        return ds
    if cache == CACHE_MEMORY:
        return ds.cache()
    Path(cache).mkdir(parents=True, exist_ok=True)
    prefix = os.path.join(cache, name)
    _clear_stale_locks(prefix)
    return ds.cache(prefix)


def class_weights(labels: Sequence[int], num_classes: int) -> np.ndarray:
    """Balanced class weights ``n / (k * count)``; classes never seen get 1."""
    counts = np.bincount(np.asarray(labels, dtype=np.int64), minlength=num_classes)[:num_classes]
    weights = np.ones(num_classes, dtype=np.float32)
    seen = counts > 0
    weights[seen] = counts.sum() / (seen.sum() * counts[seen])
    return weights


def split_labels(records: tf.data.Dataset) -> np.ndarray:
    """All labels of a split (reads labels only, never decodes images)."""
    labels = records.map(lambda _, label: label, num_parallel_calls=AUTOTUNE)
    return np.fromiter(labels.as_numpy_iterator(), dtype=np.int64)


def pad_with_zero_weights(
    ds: tf.data.Dataset, num_examples: int, batch_size: int
) -> tf.data.Dataset:
    """``(x, y)`` elements to ``(x, y, weight)`` padded to whole batches of ``batch_size``.

    The padding examples (zeros) have weight 0; the real ones all have weight
    ``padded / num_examples``. Batched with ``drop_remainder``, every batch is full, so
    no replica of a distribution strategy ever gets an empty or short batch, and
    Keras's weighted metrics (accuracy, top-5) and its loss (summed over the batch,
    averaged over batches by batch size) stay exact over the real examples.
    """
    if num_examples < 1:
        raise ValueError("cannot pad an empty split")
    padded = math.ceil(num_examples / batch_size) * batch_size
    weight = tf.constant(padded / num_examples, tf.float32)
    zeros = tf.nest.map_structure(lambda spec: tf.zeros(spec.shape, spec.dtype), ds.element_spec)
    padding = tf.data.Dataset.from_tensors((*zeros, tf.constant(0.0))).repeat(padded - num_examples)
    return ds.map(lambda x, y: (x, y, weight)).concatenate(padding)


def make_dataset(
    records: tf.data.Dataset,
    *,
    image_size: int,
    batch_size: int,
    training: bool = False,
    num_classes: int | None = None,
    cache: str = CACHE_MEMORY,
    cache_name: str = "split",
    augment: Callable[[tf.Tensor], tf.Tensor] | None = None,
    shuffle_buffer: int = 2048,
    seed: int | None = None,
    one_hot: bool = False,
    sample_weights: np.ndarray | None = None,
    drop_remainder: bool = False,
    repeat: bool = False,
    pad_to_batches: int | None = None,
    extra: tf.data.Dataset | None = None,
) -> tf.data.Dataset:
    """Batches of ``(images float32 [B, S, S, 3] in [0, 255], labels[, weights])``.

    ``num_classes`` keeps only labels below it (drops ``none``). With ``training``
    the order is shuffled and need not be deterministic; ``augment`` is applied to
    whole batches after the cache. ``one_hot`` gives ``float32 [B, num_classes]``
    labels (for label smoothing); ``sample_weights`` (per class) adds a third element.

    For training under a distribution strategy, ``repeat`` repeats the examples
    before batching with ``drop_remainder`` (every batch full: fixed shapes, no
    replica without data). For evaluation, ``pad_to_batches=N`` (the number of
    examples kept) pads the last batch with zero-weight examples instead (see
    :func:`pad_with_zero_weights`): every batch full, metrics exact. ``extra``: decoded
    ``(image float32 [S, S, 3], label int32)`` examples (e.g. :func:`background_windows`)
    joined to the records' before the cache.
    """
    if one_hot and num_classes is None:
        raise ValueError("one_hot labels need num_classes")
    if pad_to_batches is not None and (sample_weights is not None or training):
        raise ValueError("pad_to_batches is for evaluation data without sample_weights")
    ds = records
    if num_classes is not None:
        ds = ds.filter(lambda _, label: label < num_classes)
    ds = ds.map(
        lambda image, label: (decode_and_resize(image, image_size), tf.cast(label, tf.int32)),
        num_parallel_calls=AUTOTUNE,
        deterministic=not training,
    )
    if extra is not None:
        ds = ds.concatenate(extra)
    ds = apply_cache(ds, cache, f"{cache_name}_{image_size}px_{PREPROCESSING_ID}")
    if training:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    if repeat:
        ds = ds.repeat()
        drop_remainder = True
    if pad_to_batches is not None:
        ds = pad_with_zero_weights(ds, pad_to_batches, batch_size)
        drop_remainder = True
    ds = ds.batch(batch_size, drop_remainder=drop_remainder, num_parallel_calls=AUTOTUNE)
    if augment is not None:
        ds = ds.map(
            lambda images, labels, *rest: (augment(images), labels, *rest),
            num_parallel_calls=AUTOTUNE,
            deterministic=not training,
        )
    if one_hot:
        ds = ds.map(lambda images, labels, *rest: (images, tf.one_hot(labels, num_classes), *rest))
    if sample_weights is not None:
        table = tf.constant(np.asarray(sample_weights, dtype=np.float32))
        ds = ds.map(
            lambda images, labels: (
                images,
                labels,
                tf.gather(table, labels if not one_hot else tf.argmax(labels, axis=-1)),
            )
        )
    options = tf.data.Options()
    options.deterministic = not training
    # TFDS splits may be a single file: shard by element across workers.
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return ds.with_options(options).prefetch(AUTOTUNE)


def load_photos(
    data_dir: str | os.PathLike, split: str, *, dataset: str = DATASET_NAME
) -> tf.data.Dataset:
    """Photos of the ``images`` config as ``(jpeg_bytes, boxes float32 [N, 4])``.

    Boxes are TFDS's normalized ``(ymin, xmin, ymax, xmax)`` of every logo in the photo.
    """

    builder = _builder(dataset, "images", data_dir)
    if split.split("[", 1)[0] not in builder.info.splits:
        raise ValueError(f"{builder.data_dir}: split {split!r} not in {dataset}/images")
    ds = read_split(builder, split)
    return ds.map(
        lambda ex: (ex["image"], tf.cast(ex["objects"]["bbox"], tf.float32)),
        num_parallel_calls=AUTOTUNE,
    )


def split_filenames(
    data_dir: str | os.PathLike, config: str, split: str, *, dataset: str = DATASET_NAME
) -> list[str]:
    """The distinct photo file names of a split's examples (``split`` may be sliced)."""

    builder = _builder(dataset, config, data_dir)
    ds = read_split(builder, split)
    names = ds.map(lambda ex: ex["filename"], num_parallel_calls=AUTOTUNE)
    return sorted({name.decode("utf-8") for name in names.as_numpy_iterator()})


# The splits of the ``images`` config whose photos context windows are cut from (test:
# FlickrLogos-27's query set has no boxes; no dataset's test photos are trained on).
BOXED_PHOTO_SPLITS = ("train", "validation")


def load_boxed_photos(
    data_dir: str | os.PathLike, filenames: Sequence[str], *, dataset: str = DATASET_NAME
) -> tf.data.Dataset:
    """The ``images`` config's photos named in ``filenames`` (from its train and
    validation splits, in a fixed order) as ``(jpeg_bytes, boxes float32 [N, 4],
    labels int32 [N])``: every logo box (TFDS's normalized ``(ymin, xmin, ymax, xmax)``)
    and its class."""

    builder = _builder(dataset, "images", data_dir)
    wanted = tf.constant(sorted(set(filenames)), tf.string, shape=[len(set(filenames))])
    ds = None
    for split in (s for s in BOXED_PHOTO_SPLITS if s in builder.info.splits):
        part = read_split(builder, split)
        ds = part if ds is None else ds.concatenate(part)
    ds = ds.filter(lambda ex: tf.reduce_any(tf.equal(ex["filename"], wanted)))
    return ds.map(
        lambda ex: (
            ex["image"],
            tf.cast(ex["objects"]["bbox"], tf.float32),
            tf.cast(ex["objects"]["label"], tf.int32),
        ),
        num_parallel_calls=AUTOTUNE,
    )
