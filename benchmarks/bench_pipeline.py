"""Benchmarks 1 and 2: the input pipeline and the training feed, like with like.

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
2. Training steps per second of the model as the trainer trains it, fed by our pipeline,
   with each augmentation (Keras layers and fused), without augmentation, by ``fit``
   on the article's NumPy arrays and by the ceiling dataset, after the first epoch (every
   step a full batch: the pipelines repeated as the trainer's, the arrays cut to whole
   batches), in
   both phases: the head on a frozen base (pretrained-style base: not
   trainable, BatchNorm in inference mode) and fine-tuning (top half of the base
   trainable, learning rate 1e-4).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path

import numpy as np
import tensorflow as tf

from benchmarks.common import Row, Section, timed, verdict
from logo_batch.data.pipeline import AUTOTUNE, load_split, make_dataset
from logo_batch.inference.preprocessing import decode_image_tf, resize_image
from logo_batch.training.augment import FUSED, LAYERS, AugmentConfig, make_augment_fn

FINE_TUNE_FRACTION = 0.5  # the trainer's default
FINE_TUNE_LEARNING_RATE = 1e-4
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


def count_images(ds: tf.data.Dataset, max_batches: int | None = None) -> int:
    """Iterates a batched dataset (the work is done), returning how many images it gave."""
    total = 0
    for i, batch in enumerate(ds):
        if max_batches is not None and i >= max_batches:
            break
        total += int(batch[0].shape[0])
    return total


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


def cpu_timed(fn):
    """Runs ``fn`` once; returns (wall seconds, CPU seconds of this process, result)."""
    cpu = time.process_time()
    seconds, result = timed(fn)
    return seconds, time.process_time() - cpu, result


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
