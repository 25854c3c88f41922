"""An int8 model added to a bundle, checked against its float32 model
(``logo-batch quantize``).

The bundle's Keras model is converted by TensorFlow Lite's post-training quantization
(:func:`convert_int8`), its activation ranges calibrated on training images of the
bundle's dataset config (and, for a bundle with a background class, on the
whole-photo windows of training photos, which is what it will score). Then both
models classify the validation split (and, with a background class, the validation
photos in whole-photo mode); the int8 model is marked as keeping the accuracy when
its top-1 is within :data:`logo_batch.inference.engines.MAX_TOP1_DROP` of the float32
model's on each. ``model.int8.tflite`` and the figures (``quantization`` in ``metadata.json``)
are written to the bundle atomically; the Keras model is left as it was.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import os
import time
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from logo_batch import console
from logo_batch.data import pipeline as data_lib
from logo_batch.evaluation.tflite_export import CHECK_INPUTS, float32_engine
from logo_batch.inference import engines
from logo_batch.inference.bundle import METADATA_FILE, Bundle, write_bundle_file
from logo_batch.inference.checks import load_checked
from tfds_flickr27 import DATASET_NAME, IMAGES

if TYPE_CHECKING:
    import keras

DEFAULT_CALIBRATION = 1000  # model inputs (the crops train split holds 890)
CALIBRATION_PHOTOS = 16  # training photos whose windows join them (background bundles)
CALIBRATION_SEED = 7


def convert_int8(model: keras.Model, calibration: Iterable[np.ndarray]) -> bytes:
    """``model`` as a TensorFlow Lite flatbuffer, weights and activations int8 (float
    input and output), its activation ranges calibrated on ``calibration`` (model
    inputs ``float32 [S, S, 3]``)."""
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for image in calibration:
            yield [np.asarray(image, dtype=np.float32)[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    quiet = not console.is_verbose()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        console.native_stderr_captured(quiet),
    ):
        # The export lists every tensor; the float input has no statistics (by design).
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        return converter.convert()


def calibration_inputs(
    bundle: Bundle, data_dir: str | os.PathLike, count: int, dataset: str = DATASET_NAME
) -> Iterator[np.ndarray]:
    """Model inputs ``float32 [S, S, 3]`` from the training split of the bundle's
    dataset config (a seeded shuffle of it, ``count`` of them), then, for a bundle with
    a background class, the whole-photo windows of :data:`CALIBRATION_PHOTOS` training
    photos."""
    from logo_batch.evaluation import photo_metrics
    from logo_batch.inference.whole_photo import photo_stack

    config = bundle.metadata.dataset.get("config", IMAGES)
    info = data_lib.load_split(data_dir, config, "train", dataset=dataset)
    records = info.records.shuffle(4096, seed=CALIBRATION_SEED).take(count)
    ds = data_lib.make_dataset(records, image_size=bundle.image_size, batch_size=32, cache="none")
    for images, _ in ds.as_numpy_iterator():
        yield from images
    if bundle.metadata.background_class:
        photos, _ = photo_metrics.split_photos(data_dir, "train", dataset)
        for _, image in zip(range(CALIBRATION_PHOTOS), photos, strict=False):
            yield from photo_stack(image, bundle.image_size).inputs


def _top1(scores: np.ndarray, labels: np.ndarray) -> float:
    logo = labels < scores.shape[1]
    return float(np.mean(scores.argmax(axis=1)[logo] == labels[logo]))


def _brand_top1(scores: np.ndarray, labels: np.ndarray, metadata) -> float:
    """Top-1 over the brands (what ``evaluate`` reports as ``brand_accuracy`` for a
    bundle with a background class, ``accuracy`` otherwise)."""
    from logo_batch.evaluation.metrics import background_metrics

    if not metadata.background_class:
        return _top1(scores, labels)
    index = metadata.class_names.index(metadata.background_class)
    return background_metrics(scores, labels, index)["brand_accuracy"]


def compare_models(
    bundle: Bundle,
    quantized: engines.TfliteModel,
    data_dir: str | os.PathLike,
    split: str = "validation",
    dataset: str = DATASET_NAME,
) -> dict[str, Any]:
    """Top-1 of the float32 and the int8 model on ``split`` of the bundle's config, how
    often their top classes agree, and (a bundle with a background class) the same on
    that split's photos in whole-photo mode."""
    from logo_batch.evaluation import photo_metrics
    from logo_batch.inference.engines import predict_scores

    meta = bundle.metadata
    config = meta.dataset.get("config", IMAGES)
    records = data_lib.load_split(data_dir, config, split, dataset=dataset).records
    models = {"float32": bundle.model, "int8": quantized}
    # Each example decoded once, scored by both models.
    ds = data_lib.make_dataset(records, image_size=bundle.image_size, batch_size=64, cache="none")
    scores: dict[str, list[np.ndarray]] = {name: [] for name in models}
    labels = []
    for images, batch_labels in ds.as_numpy_iterator():
        for name, model in models.items():
            scores[name].append(predict_scores(model, images))
        labels.append(batch_labels)
    label_array = np.concatenate(labels).astype(np.int64)
    figures: dict[str, Any] = {"split": f"{config}/{split}"}
    outputs = {}
    for name in models:
        split_scores = np.concatenate(scores[name])
        figures[f"top1_{name}"] = _brand_top1(split_scores, label_array, meta)
        outputs[name] = split_scores.argmax(axis=1)
    figures["agreement"] = float(np.mean(outputs["float32"] == outputs["int8"]))
    if meta.background_class:
        photos, photo_labels = photo_metrics.split_photos(data_dir, split, dataset)
        photos = list(photos)  # decoded once for both models
        for name, model in models.items():
            photo_model = photo_metrics.PhotoModel(
                model, meta.image_size, list(meta.class_names), meta.background_class
            )
            figures[f"photos_top1_{name}"] = _top1(photo_model.brand_scores(photos), photo_labels)
    return figures


def kept_accuracy(figures: dict[str, Any]) -> bool:
    """Each top-1 of the int8 model within :data:`~logo_batch.inference.engines.MAX_TOP1_DROP` of
    the float32 model's."""
    return all(
        figures[f"{prefix}int8"] >= figures[f"{prefix}float32"] - engines.MAX_TOP1_DROP
        for prefix in ("top1_", "photos_top1_")
        if f"{prefix}float32" in figures
    )


def cascade_of(
    bundle: Bundle, model, data_dir: str | os.PathLike, dataset: str
) -> dict[str, float]:
    """The whole-photo cascade chosen on the validation photos, as ``train``'s export
    chooses it (:func:`~logo_batch.evaluation.photo_metrics.calibrate`), with ``model``
    (the bundle's model or a float32 engine of it): for a bundle trained before the
    cascade existed."""
    from logo_batch.evaluation import photo_metrics

    meta = bundle.metadata
    photo_model = photo_metrics.PhotoModel(
        model, meta.image_size, list(meta.class_names), meta.background_class
    )
    _, metrics = photo_metrics.calibrate(photo_model, data_dir, dataset=dataset)
    found = metrics["cascade"]
    return {"accept": found["accept"], "reject": found["reject"]}


def quantize_bundle(
    bundle: str | os.PathLike,
    data_dir: str | os.PathLike,
    *,
    calibration: int = DEFAULT_CALIBRATION,
    dataset: str | None = None,
) -> dict[str, Any]:
    """Adds ``model.int8.tflite`` to a local bundle and its figures to the metadata
    (``quantization``); returns the figures. ``dataset``: the TFDS dataset calibrated
    and compared on (default: the one the bundle trained on). A bundle made before
    ``train`` wrote ``model.tflite`` (the float32 engine) gets it here too, checked on the
    calibration inputs (:func:`~logo_batch.evaluation.tflite_export.float32_engine`), and
    one with a background class made before the whole-photo cascade gets its cascade,
    chosen on the validation photos (:func:`cascade_of`)."""
    if calibration < 1:
        raise ValueError(f"calibration must be at least 1 image, not {calibration}")
    loaded = load_checked(bundle)
    dataset = dataset or loaded.metadata.dataset.get("name", DATASET_NAME)
    start = time.perf_counter()
    inputs = list(calibration_inputs(loaded, data_dir, calibration, dataset))
    content = convert_int8(loaded.model, inputs)
    figures: dict[str, Any] = {
        "file": engines.INT8_FILE,
        "calibration_inputs": len(inputs),
        "convert_seconds": round(time.perf_counter() - start, 1),
        "bytes": len(content),
    }
    figures.update(compare_models(loaded, engines.TfliteModel(content), data_dir, dataset=dataset))
    figures["kept_accuracy"] = kept_accuracy(figures)
    write_bundle_file(bundle, engines.INT8_FILE, content)
    metadata = dataclasses.replace(loaded.metadata, quantization=figures)
    fast = loaded.model  # what scores the validation photos for the cascade
    if engines.TFLITE_FLOAT32 not in metadata.engines:
        checked = np.stack(inputs[:CHECK_INPUTS])
        float32, metadata.engines[engines.TFLITE_FLOAT32] = float32_engine(loaded.model, checked)
        if metadata.engines[engines.TFLITE_FLOAT32]["kept_scores"]:
            write_bundle_file(bundle, engines.TFLITE_FILE, float32)
            fast = engines.TfliteModel(float32)
    if metadata.background_class and not metadata.whole_photo.get("cascade"):
        cascade = cascade_of(loaded, fast, data_dir, dataset)
        metadata.whole_photo = {**metadata.whole_photo, "cascade": cascade}
    write_bundle_file(bundle, METADATA_FILE, (metadata.to_json() + "\n").encode("utf-8"))
    return figures
