"""The CPU's own accelerators, and how many CPU cores keep one GPU busy (issue #11).

In one run, each figure with its baseline measured alongside:

1. What this machine has: the CPU's bfloat16 and int8 units (``/proc/cpuinfo``),
   TensorFlow's oneDNN, GPUs, and the precision ``auto`` picks
   (:func:`logo_batch.training.distribute.resolve_precision`).
2. Inference, MobileNetV2 at 224 px, batches of 32, the same images for every variant
   (rounds interleaved, medians): float32 called eagerly (``model(x)``, layer by layer
   from Python: the project's path until 2026-11-25; the baseline) vs float32 through
   :func:`logo_batch.inference.engines.predict_scores` (what ``logo-batch predict`` and
   the Beam job run: one traced graph, ``engines.compiled_forward``), the same bundle in
   ``mixed_bfloat16`` through it (``engines.low_precision_model``), Keras's own
   ``predict_on_batch``; TensorFlow Lite float32 and int8 (post-training quantization
   calibrated on training images, ``evaluation.quantize.convert_int8``), both run by
   ``engines.TfliteModel``. With a trained bundle and the built ``crops`` data, the
   top-1 accuracy of each on the crops test split.
3. Training step, MobileNetV2 at 224 px, every layer trainable, float32 vs
   ``mixed_bfloat16`` (``train_on_batch`` on in-memory data: the model alone).
4. Training feed per core: images per CPU-second of this process through
   :func:`logo_batch.data.pipeline.make_dataset` as the trainer calls it, on the real
   photos of the ``images`` train split at 224 px, without a cache (a dataset too big
   to cache is decoded every epoch): decode + resize, decode + resize + augmentation,
   and augmentation alone (epochs over a memory cache), each augmentation both ways:
   the Keras layers (``--augmentation layers``, the recipe until 2026-12) and the fused warp +
   colour matrix (``--augmentation fused``).
5. Cores to keep one GPU busy training MobileNetV2 at 224 px: a GPU's published (or
   estimated from published) training rate over the per-core feed rate, with each
   augmentation on the CPU, and with the augmentation on the GPU (4 and 5:
   :mod:`benchmarks.gpu_cores`).

    python -m benchmarks.bench_devices --data-dir DIR [--bundle BUNDLE] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, Row, Section, cpu_rate, median, per_cpu_of
from benchmarks.gpu_cores import (
    BATCH_SIZE,
    DLE_B0_A100,
    FLAGPERF_A100_FP32,
    IMAGE_SIZE,
    TIMM_B0_3090,
    TIMM_MBV2_3090,
    cores_table,
    feed_rates,
    feed_rows,
)

TRAIN_BATCH_SIZE = 16  # bfloat16 steps are slow without AMX: a smaller batch, same ratio
DEFAULT_DATA_DIR = REPO.parent / "data" / "tfds"  # where the built data is, when it is
# -- measuring ----------------------------------------------------------------------------


def batches(images: np.ndarray, size: int = BATCH_SIZE) -> Iterator[np.ndarray]:
    for start in range(0, len(images), size):
        yield images[start : start + size]


def decoded_split(data_dir: Path, config: str, split: str, limit: int | None = None):
    """``(images float32 [N, 224, 224, 3], label names)`` of a split (logo classes),
    decoded and resized by the shared path."""
    from logo_batch.data.pipeline import load_split, make_dataset

    info = load_split(data_dir, config, split)
    records = info.records if limit is None else info.records.take(limit)
    ds = make_dataset(
        records,
        image_size=IMAGE_SIZE,
        batch_size=BATCH_SIZE,
        num_classes=len(info.logo_class_names),
        cache="none",
    )
    images, labels = [], []
    for x, y in ds:
        images.append(x.numpy())
        labels.extend(info.class_names[int(i)] for i in y.numpy())
    return np.concatenate(images), labels


def tflite_flatbuffers(model, calibration: np.ndarray) -> dict[str, bytes]:
    """The model converted to TensorFlow Lite: float32, and int8 (weights and
    activations, float input and output, as ``logo-batch quantize`` makes it) calibrated
    on ``calibration`` images. Both run as :class:`~logo_batch.inference.engines.TfliteModel`."""
    import tensorflow as tf

    from logo_batch.evaluation.quantize import convert_int8

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with contextlib.redirect_stdout(io.StringIO()):  # Keras's export lists every tensor
        float32 = converter.convert()
    return {"float32": float32, "int8": convert_int8(model, calibration)}


def inference_rates(
    predictors: dict[str, Callable[[np.ndarray], np.ndarray]],
    images: np.ndarray,
    rounds: int,
) -> tuple[dict[str, list[tuple[float, float]]], dict[str, np.ndarray]]:
    """Each predictor over ``images`` in batches, ``rounds`` times in turn (one warm-up
    batch first): the (images/s, images/CPU-s) of every round, and each one's scores."""
    for predict in predictors.values():
        predict(images[:BATCH_SIZE])
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in predictors}
    scores: dict[str, np.ndarray] = {}
    for _ in range(rounds):
        for name, predict in predictors.items():
            out: list[np.ndarray] = []

            def run(predict=predict, out=out) -> int:
                out.extend(predict(batch) for batch in batches(images))
                return len(images)

            rates[name].append(cpu_rate(run))
            scores[name] = np.concatenate(out)
    return rates, scores


def accuracy(scores: np.ndarray, labels: list[str], class_names: list[str]) -> float:
    """Top-1 accuracy of softmax ``scores`` against label names."""
    predicted = [class_names[i] for i in scores.argmax(axis=1)]
    return float(np.mean([p == t for p, t in zip(predicted, labels, strict=True)]))


def training_step_rates(
    num_classes: int, policies: tuple[str, ...], steps: int, rounds: int, batch_size: int
) -> dict[str, list[tuple[float, float]]]:
    """Training (images/s, images/CPU-s) of MobileNetV2 at 224 px (all layers trainable,
    Adam, one fixed batch in memory) under each dtype policy, rounds in turn after a
    warm-up step."""
    import keras

    from logo_batch.training import distribute, models

    rng = np.random.default_rng(0)
    x = rng.uniform(0, 255, (batch_size, IMAGE_SIZE, IMAGE_SIZE, 3)).astype("float32")
    y = rng.integers(0, num_classes, batch_size)
    previous = keras.mixed_precision.global_policy().name
    compiled = {}
    try:
        for policy in policies:
            distribute.set_precision(policy)
            model = models.build_model("mobilenet_v2", num_classes, IMAGE_SIZE, "none")
            model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
            model.train_on_batch(x, y)  # traces the step
            compiled[policy] = model
    finally:
        keras.mixed_precision.set_global_policy(previous)
    rates: dict[str, list[tuple[float, float]]] = {policy: [] for policy in policies}
    for _ in range(rounds):
        for policy, model in compiled.items():

            def run(model=model) -> int:
                for _ in range(steps):
                    model.train_on_batch(x, y)
                return steps * batch_size

            rates[policy].append(cpu_rate(run))
    return rates


# -- the section ---------------------------------------------------------------------------


def detected() -> tuple[str, str, str]:
    """(one line on this machine, the training policy ``auto`` picks, the inference one)."""
    import tensorflow as tf

    from logo_batch.inference import cpu as cpu_lib
    from logo_batch.training import distribute
    from tfds_flickr27.parallel import cpu_count

    cpu = cpu_lib.cpu_features()
    gpus = len(tf.config.list_physical_devices("GPU"))
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path(cpu_lib.CPUINFO).read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    policy = distribute.resolve_precision("auto")
    line = f"{cpu_count()} cores ({model}): {cpu.describe()}; {gpus} GPU(s)"
    return line, policy, policy


def bench_devices(
    data_dir: Path,
    *,
    bundle: Path | None = None,
    quick: bool = False,
) -> Section:
    """The section: detection, inference and training precisions, feed per core, cores
    per GPU. ``data_dir`` holds the built ``images`` config (and ``crops`` for the
    accuracy, with a trained ``bundle``: without one, an untrained MobileNetV2 of the
    same cost)."""
    from logo_batch.inference.bundle import load_bundle
    from logo_batch.inference.engines import (
        FLOAT32,
        MIXED_BFLOAT16,
        TfliteModel,
        low_precision_model,
        predict_scores,
    )
    from logo_batch.training.models import build_model

    rounds = 2 if quick else 3
    machine, train_policy, infer_policy = detected()
    crops = bundle is not None and (data_dir / "flickr_logos27" / "crops").is_dir()
    if bundle is not None:
        loaded = load_bundle(bundle)
        model, class_names = loaded.model, loaded.class_names
    else:
        class_names = [f"class{i}" for i in range(27)]
        model = build_model("mobilenet_v2", len(class_names), IMAGE_SIZE, "none")
    config = "crops" if crops else "images"
    images, labels = decoded_split(data_dir, config, "test", 64 if quick else None)
    calibration, _ = decoded_split(data_dir, config, "train", 32 if quick else 100)
    lite = tflite_flatbuffers(model, calibration)
    bf16 = low_precision_model(model, MIXED_BFLOAT16)
    predictors = {
        "float32, eager model call": lambda x: np.asarray(model(x, training=False)),
        "float32, predict_scores (compiled graph)": lambda x: predict_scores(model, x),
        "mixed_bfloat16, predict_scores (compiled graph)": lambda x: predict_scores(bf16, x),
        "float32, Keras predict_on_batch": lambda x: model.predict_on_batch(x),
        "TFLite float32 (XNNPACK)": TfliteModel(lite["float32"]),
        "TFLite int8 (post-training quantization)": TfliteModel(lite["int8"]),
    }
    inference, scores = inference_rates(predictors, images, rounds)
    accuracies = (
        {name: accuracy(s, labels, class_names) for name, s in scores.items()} if crops else {}
    )
    steps = training_step_rates(
        len(class_names), (FLOAT32, MIXED_BFLOAT16), 2, rounds,
        TRAIN_BATCH_SIZE,
    )  # fmt: skip
    feed = feed_rates(data_dir, rounds)

    section = Section("6. Devices: the CPU's accelerators, and cores to keep one GPU busy")
    base = per_cpu_of(inference, "float32, eager model call")
    for name, runs in inference.items():
        rate, per_cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
        note = f"{rate:,.1f} img/s on this machine"
        if name in accuracies:
            note += f"; top-1 {accuracies[name]:.3f} on {len(labels)} test crops"
        if name.startswith("TFLite"):
            note += f"; {len(lite[name.split()[1]]) / 2**20:.1f} MiB"
        section.rows.append(
            Row(f"inference, MobileNetV2 224 px, batch 32: {name}", per_cpu, "img/CPU-s",
                per_cpu / base, "float32", note)
        )  # fmt: skip
    fp32_steps = median([r[1] for r in steps[FLOAT32]])
    for policy, runs in steps.items():
        rate, per_cpu = median([r[0] for r in runs]), median([r[1] for r in runs])
        section.rows.append(
            Row(f"training step, MobileNetV2 224 px, batch {TRAIN_BATCH_SIZE}, all trainable: "
                f"{policy}", per_cpu, "img/CPU-s", per_cpu / fp32_steps, "float32",
                f"model alone; {rate:,.2f} img/s on this machine")
        )  # fmt: skip
    section.rows += feed_rows(feed)
    table = cores_table(feed)
    lite32 = per_cpu_of(inference, "TFLite float32 (XNNPACK)")
    int8 = per_cpu_of(inference, "TFLite int8 (post-training quantization)")
    compiled = per_cpu_of(inference, "float32, predict_scores (compiled graph)")
    section.notes = [
        f"Detected: {machine}. `--mixed-precision auto` trains in {train_policy} here; "
        f"inference `auto` is {infer_policy}. `auto` uses bfloat16 only where the CPU has AMX "
        "(Intel Sapphire Rapids and later) and TensorFlow runs oneDNN: without oneDNN "
        "TensorFlow's bfloat16 kernels convert in software, and AVX-512 BF16 alone (AMD "
        "Zen 4, Intel Cooper Lake) measured slower than float32 on such a CPU (2026-12-05, "
        "README). Inference: the same "
        f"{len(images)} images for each variant, {rounds} rounds in turn, medians; "
        f"int8 calibrated on {len(calibration)} training images"
        + (
            "."
            if crops
            else "; accuracy not measured (it needs --bundle and the built crops data)."
        )
        + " Values are images per CPU-second of this process, all its threads (on a "
        "shared machine steadier than wall time, and what provisioning needs); the wall "
        "rates are in the notes. Per core, TensorFlow Lite runs the same float32 model "
        f"{lite32 / base:.1f}x as fast as an eager model call, and the compiled graph "
        f"`logo-batch predict` and the Beam job run {compiled / base:.1f}x; int8 over "
        f"TFLite float32: {int8 / lite32:.2f}x (its gain needs int8 dot products: "
        "AVX-512 VNNI or AMX-INT8).",
        "\n".join(table),
        "Sources: RTX 3090, timm's training benchmark (huggingface/pytorch-image-models, "
        "results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv: mobilenetv2_100 "
        f"{TIMM_MBV2_3090:,.0f} img/s, efficientnet_b0 {TIMM_B0_3090:,.0f}); A100 float32, "
        "FlagPerf (FlagOpen/FlagPerf, training/nvidia/mobilenetv2-pytorch: 8x A100, "
        f"{FLAGPERF_A100_FP32 * 8:,.0f} img/s compute only); A100 mixed precision, NVIDIA "
        "DeepLearningExamples (TensorFlow2/Classification/ConvNets/efficientnet_v1: "
        f"EfficientNet-B0, 1x A100 80GB, {DLE_B0_A100:,.0f} img/s; its known issue: B0 "
        "gains little from mixed precision because its augmentation is CPU-bound) "
        "times timm's MobileNetV2/B0 ratio; T4, A10G, H100: that A100 estimate scaled by "
        "memory bandwidth (MobileNetV2's depthwise layers are memory-bound). Estimates, "
        "not measurements: the cores column is what to provision, to within the "
        "estimate's error. Feed per core: CPU time of this process on a shared 2-core "
        "machine; a cloud vCPU is a hyperthread, so count about as many vCPUs as cores "
        "here, and the photos here (Flickr, median 500 x 374 px) are the size of "
        "ImageNet's.",
    ]
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="built TFDS data (images)"
    )
    parser.add_argument("--bundle", type=Path, help="a trained crops bundle: accuracy too")
    parser.add_argument("--quick", action="store_true", help="fewer images and rounds")
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if not (args.data_dir / "flickr_logos27" / "images").is_dir():
        parser.error(f"{args.data_dir}: no built flickr_logos27/images (tfds_flickr27)")
    section = bench_devices(args.data_dir, bundle=args.bundle, quick=args.quick)
    print(section.text())
    print()
    print(section.markdown())
    return 0


if __name__ == "__main__":
    sys.exit(main())
