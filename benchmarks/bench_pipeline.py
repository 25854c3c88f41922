"""Benchmark 1: the input pipeline, like with like (benchmark 2, the training feed it
gives: :mod:`benchmarks.bench_feed`).

1. Images per second delivered, no model, each compared with what it replaces:
   - first load: the article's loader (``load_img`` in a Python loop, nearest-neighbour
     resize of the full decode, then ``np.vstack``) vs our ``tf.data`` first epoch
     (DCT-downscaled decode + antialiased bilinear resize + cache fill), both giving
     the same N x S x S x 3 float32 images; and the same pipeline with the full-size
     decode it had before;
   - epochs over data in memory: shuffled batches gathered from the article's NumPy
     array with NumPy (no input pipeline at all) vs our cached epochs, without
     augmentation and with each augmentation (the Keras layers, the recipe until 2026-12, and
     the fused warp + colour matrix), vs a ceiling (one batch,
     ``take(1).cache().repeat()``);
   - decode + resize per core: our path on one thread vs the fastest single-thread
     decode-and-downscale measured here with any installed library
     (:mod:`benchmarks.decode_reference`).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks.common import Row, Section, count_images, cpu_timed, timed, verdict
from logo_batch.data.pipeline import AUTOTUNE, load_split, make_dataset
from logo_batch.inference.preprocessing import decode_image_tf, resize_image
from logo_batch.training.augment import FUSED, LAYERS, AugmentConfig, make_augment_fn

# The two augmentations (``--augmentation``), as the rows name them: the recipe before
# first, then the fused one (the targets are held to it).
AUGMENTATIONS = {
    LAYERS: "Keras layers augmentation (3 warps + 2 HSV round trips, the recipe until 2026-12)",
    FUSED: "fused augmentation (1 affine warp + 1 colour matrix per image)",
}


def article_loader(paths: Sequence[Path], image_size: int) -> np.ndarray:
    """The article's loader: one ``load_img`` per file in a Python loop, then vstack.

    ``load_img`` decodes the whole JPEG with Pillow and resizes with nearest neighbour
    (Keras's default ``interpolation``).
    """
    from keras.utils import img_to_array, load_img

    arrays = []
    for path in paths:
        image = load_img(path, target_size=(image_size, image_size))
        arrays.append(np.expand_dims(img_to_array(image), axis=0))
    return np.vstack(arrays)


def article_count(paths: Sequence[Path], image_size: int) -> int:
    """Runs the article's loader; how many images it gave."""
    return len(article_loader(paths, image_size))


def training_pipeline(
    data_dir: Path,
    config: str,
    image_size: int,
    batch_size: int,
    augment: bool = True,
    augmentation: str = FUSED,
    repeat: bool = False,
):
    """The trainer's training input: the same library calls the trainer makes, with
    ``augmentation`` (``layers`` or ``fused``, as ``--augmentation``) when ``augment``;
    ``repeat`` as the trainer streams it (endless, full batches only)."""
    split = load_split(data_dir, config, "train")
    ds = make_dataset(
        split.records,
        image_size=image_size,
        batch_size=batch_size,
        training=True,
        num_classes=len(split.logo_class_names),
        cache="memory",
        augment=make_augment_fn(AugmentConfig(method=augmentation)) if augment else None,
        seed=0,
        repeat=repeat,
    )
    return split, ds


def full_decode_pipeline(
    records: tf.data.Dataset, num_classes: int, image_size: int, batch_size: int
) -> tf.data.Dataset:
    """:func:`training_pipeline` without augmentation as it was before DCT scaling: the
    whole JPEG decoded, then resized (same map, cache, shuffle, batch, prefetch)."""
    ds = records.filter(lambda _, label: label < num_classes).map(
        lambda jpeg, label: (resize_image(decode_image_tf(jpeg), image_size), label),
        num_parallel_calls=AUTOTUNE,
        deterministic=False,
    )
    ds = ds.cache().shuffle(2048, seed=0).batch(batch_size, num_parallel_calls=AUTOTUNE)
    return ds.prefetch(AUTOTUNE)


def numpy_epoch(array: np.ndarray, batch_size: int, rng: np.random.Generator) -> int:
    """One epoch of shuffled batches gathered from an in-memory array; images given."""
    order = rng.permutation(len(array))
    total = 0
    for start in range(0, len(array), batch_size):
        total += len(array[order[start : start + batch_size]])
    return total


def split_files(data_dir: Path, config: str, split: str) -> list[tuple[str, int]]:
    """``(source file name, label)`` of a split's examples, in record order."""
    import tensorflow_datasets as tfds

    from tfds_flickr27 import DATASET_NAME  # importing it registers the builder

    builder = tfds.builder(f"{DATASET_NAME}/{config}", data_dir=str(data_dir))
    ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
    return [(ex["filename"].decode(), int(ex["label"])) for ex in ds.as_numpy_iterator()]


def article_inputs(
    data_dir: Path, config: str, image_dir: Path, num_classes: int
) -> tuple[list[Path], np.ndarray]:
    """The files of the train split our pipeline keeps (logo classes) and their labels."""
    files = [(n, y) for n, y in split_files(data_dir, config, "train") if y < num_classes]
    return [image_dir / name for name, _ in files], np.array([y for _, y in files], np.int32)


def first_loads(data_dir, config, image_dir, image_size, batch_size, repeats):
    """The first load of each loader, ``repeats`` times in turn (fresh datasets, so
    fresh caches); the best of each: ``{name: (img/s, img/CPU-s)}``, the last array
    and the last (filled) dataset of ours."""
    best: dict[str, tuple[float, float]] = {}
    for _ in range(repeats):
        split, ds = training_pipeline(data_dir, config, image_size, batch_size, augment=False)
        num_classes = len(split.logo_class_names)
        full = full_decode_pipeline(split.records, num_classes, image_size, batch_size)
        paths, _ = article_inputs(data_dir, config, image_dir, num_classes)
        runs = {
            "article": partial(article_count, paths, image_size),
            "first": partial(count_images, ds),
            "full": partial(count_images, full),
        }
        for name, run in runs.items():
            wall, cpu, count = cpu_timed(run)
            old = best.get(name, (0.0, 0.0))
            best[name] = (max(old[0], count / wall), max(old[1], count / cpu))
    return best, paths, ds


def bench_input(
    data_dir: Path,
    config: str,
    image_dir: Path,
    image_size: int,
    batch_size: int,
    epochs: int,
    repeats: int = 3,
) -> Section:
    """Benchmark 1: images per second delivered by each loader, like with like."""
    from benchmarks.decode_reference import DECODE_ONLY, decode_rates

    loads, paths, ds = first_loads(data_dir, config, image_dir, image_size, batch_size, repeats)
    article, first, full = loads["article"][0], loads["first"][0], loads["full"][0]
    augmented = {
        method: training_pipeline(data_dir, config, image_size, batch_size, augmentation=method)[1]
        for method in AUGMENTATIONS
    }
    array = article_loader(paths, image_size)
    section = Section(
        f"1. Input pipeline ({config} train split, {len(paths)} images, {image_size} px)"
    )
    # Epochs over data already in memory (ours: its cache filled by its first load).
    rng = np.random.default_rng(0)
    numpy_rates, later = [], []
    for _ in range(max(1, epochs - 1)):
        t, n = timed(lambda: numpy_epoch(array, batch_size, rng))
        numpy_rates.append(n / t)
        t, n = timed(lambda: count_images(ds))
        later.append(n / t)
    in_memory = float(np.median(numpy_rates))
    cached = float(np.median(later))
    for aug_ds in augmented.values():
        count_images(aug_ds)  # fills its cache (and traces the augmentation)
    aug_rates = {}
    for method, aug_ds in augmented.items():  # one epoch each, back to back
        t_aug, n_aug = timed(lambda aug_ds=aug_ds: count_images(aug_ds))
        aug_rates[method] = n_aug / t_aug
    ceiling_ds = ds.take(1).cache().repeat()
    count_images(ceiling_ds, 2)  # fills the one-batch cache
    t_ceiling, n_ceiling = timed(lambda: count_images(ceiling_ds, -(-len(paths) // batch_size)))
    ceiling = n_ceiling / t_ceiling
    # Decode + resize per core (images per CPU-second, one thread).
    datas = [path.read_bytes() for path in paths]
    references, ours, missing = decode_rates(datas, image_size, repeats)
    fastest_name = max(references, key=references.get)
    fastest = references[fastest_name]
    ours_tf = next(iter(ours.values()))

    def per_cpu(name: str) -> str:
        return f"{loads[name][1]:,.0f} img/CPU-s ({loads[name][1] / loads['article'][1]:.2f}x)"

    mib = array.nbytes / 2**20
    section.rows = [
        Row("article loader: load_img (full decode, nearest) loop + np.vstack", article,
            "img/s", 1.0, "baseline", f"first load, {per_cpu('article')}; holds {mib:.0f} MiB"),
        Row("tf.data first epoch: DCT-scaled decode + antialiased bilinear + cache fill",
            first, "img/s", first / article, "article", f"same output; {per_cpu('first')}"),
        Row("tf.data first epoch, full-size decode + antialiased bilinear (before #11)",
            full, "img/s", full / article, "article", per_cpu("full")),
        Row("article's array in memory: shuffled batches (NumPy gather), median epoch",
            in_memory, "img/s", 1.0, "baseline", "the article's data, no input pipeline"),
        Row("tf.data cached epochs (median)", cached, "img/s", cached / in_memory, "array"),
    ]  # fmt: skip
    for method, label in AUGMENTATIONS.items():
        rate = aug_rates[method]
        note = f"{rate / ceiling:.2f}x ceiling; augmentation is compute, per epoch"
        if method != LAYERS:
            note += f"; {rate / aug_rates[LAYERS]:.2f}x the Keras layers"
        section.rows.append(
            Row(f"tf.data cached epoch + {label}, as training runs", rate, "img/s",
                rate / in_memory, "array", note)
        )  # fmt: skip
    section.rows.append(
        Row("ceiling: take(1).cache().repeat()", ceiling, "img/s", ceiling / in_memory, "array")
    )
    for name, rate in references.items():
        section.rows.append(
            Row(f"decode + resize, 1 thread: {name}", rate, "img/CPU-s", rate / fastest,
                "fastest", "reference")
        )  # fmt: skip
    decode_only = ours.pop(DECODE_ONLY)
    for name, rate in ours.items():
        section.rows.append(
            Row(f"decode + resize, 1 thread, ours: {name}", rate, "img/CPU-s", rate / fastest,
                "fastest")
        )  # fmt: skip
    resize_ms = 1e3 * (1 / ours_tf - 1 / decode_only)
    section.rows.append(
        Row(f"of which, ours: {DECODE_ONLY}", decode_only, "img/CPU-s", decode_only / fastest,
            "fastest", f"so the antialiased resize takes {resize_ms:.2f} of "
            f"{1e3 / ours_tf:.2f} ms per image")
    )  # fmt: skip
    section.targets = [
        f"target first epoch >= 2x article (same output): {verdict(first >= 2 * article)} "
        f"({first / article:.2f}x)",
        f"target decode + resize per core within 1.5x of the fastest ({fastest_name}): "
        f"{verdict(fastest <= 1.5 * ours_tf)} ({fastest / ours_tf:.2f}x)",
    ]
    section.notes = [
        "Resizes: the article's `load_img` decodes the whole JPEG and resizes with "
        "nearest neighbour (aliased); ours decodes a JPEG downscaled in the DCT domain "
        "(libjpeg-turbo scaled IDCT, the largest of 1/2, 1/4, 1/8 that keeps both sides "
        f">= {image_size} px) and resizes with antialiased bilinear. First loads: best of "
        f"{repeats} in turn, fresh caches; img/CPU-s counts every thread of this process "
        "(the article's loop has one, tf.data one per core). Cached epochs are compared "
        "with epochs over the article's in-memory array, not with its first load. "
        "Per-core speeds: images per CPU-second of one thread, best of "
        f"{repeats} in turn (CPU time: the machine is shared)"
        + (f"; not installed, so not tried: {', '.join(missing)}." if missing else "."),
    ]
    return section
