"""The CPU's own accelerators, and how many CPU cores keep one GPU busy (issue #11).

In one run, each figure with its baseline measured alongside:

1. What this machine has: the CPU's bfloat16 and int8 units (``/proc/cpuinfo``),
   TensorFlow's oneDNN, GPUs, and the precision ``auto`` picks
   (:func:`logo_batch.training.distribute.resolve_precision`).
2. Inference, MobileNetV2 at 224 px, batches of 32, the same images for every variant
   (rounds interleaved, medians): float32 called eagerly (``model(x)``, layer by layer
   from Python: the project's path until 2026-11-25; the baseline) vs float32 through
   :func:`logo_batch.inference.engines.predict_scores` (what ``logo-batch predict`` and the Beam
   job run: one traced graph, :func:`logo_batch.inference.engines.compiled_forward`), the same
   bundle in ``mixed_bfloat16`` through it (:func:`logo_batch.inference.engines.inference_model`),
   Keras's own ``predict_on_batch``; TensorFlow Lite float32 and int8
   (post-training quantization calibrated on training images). With a trained bundle
   and the built ``crops`` data, the top-1 accuracy of each on the crops test split.
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
   augmentation on the CPU, and with the augmentation on the GPU.

    python -m benchmarks.bench_devices --data-dir DIR [--bundle BUNDLE] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchmarks.common import REPO, Row, Section

IMAGE_SIZE = 224
BATCH_SIZE = 32
TRAIN_BATCH_SIZE = 16  # bfloat16 steps are slow without AMX: a smaller batch, same ratio
DEFAULT_DATA_DIR = REPO.parent / "data" / "tfds"  # where the built data is, when it is
# The training feed's augmentations (``--augmentation``), as the rows name them.
AUGMENTATIONS = {
    "layers": "Keras layers (3 warps + 2 HSV round trips, the recipe until 2026-12)",
    "fused": "fused (1 affine warp + 1 colour matrix per image)",
}
DECODE = "decode + resize"


@dataclass(frozen=True)
class GpuRate:
    """A GPU's MobileNetV2 training rate at 224 px (images/s) and where it comes from."""

    name: str
    images_per_second: float
    basis: str
    cited: bool  # a published MobileNetV2 measurement; else an estimate from one


# Published figures (mixed precision unless said):
# - timm, RTX 3090, PyTorch 1.12, AMP, NHWC, batch 512, synthetic data (the model alone):
#   mobilenetv2_100 2313.1 img/s, efficientnet_b0 1751.72 img/s
#   (huggingface/pytorch-image-models, results/benchmark-train-amp-nhwc-pt112-cu113-rtx3090.csv)
# - NVIDIA DeepLearningExamples, TensorFlow2 EfficientNet v1-B0, 1x A100 80GB, mixed
#   precision: 3454 img/s (TensorFlow2/Classification/ConvNets/efficientnet_v1/README.md,
#   "Training performance: NVIDIA DGX A100")
# - FlagPerf, MobileNetV2 (PyTorch), 8x A100 40GB, fp32/TF32, batch 512, compute only
#   (p_core): 9126 img/s, 1141 per GPU (FlagOpen/FlagPerf,
#   training/nvidia/mobilenetv2-pytorch/README.md)
TIMM_MBV2_3090 = 2313.1
TIMM_B0_3090 = 1751.72
DLE_B0_A100 = 3454.0
FLAGPERF_A100_FP32 = 9126.0 / 8
MBV2_PER_B0 = TIMM_MBV2_3090 / TIMM_B0_3090  # MobileNetV2 trains 1.32x as fast as B0
A100_MBV2 = DLE_B0_A100 * MBV2_PER_B0
# Depthwise convolutions are memory-bound: the other GPUs scale A100's estimate by memory
# bandwidth (GB/s, the makers' data sheets): A100 80GB SXM 2039, T4 320, A10G 600, H100 SXM
# 3350. (Check: 3090's 936 GB/s would predict 2313 * 2039 / 936 = 5039 for A100.)
A100_BANDWIDTH = 2039.0


def _scaled(name: str, bandwidth: float) -> GpuRate:
    rate = A100_MBV2 * bandwidth / A100_BANDWIDTH
    basis = f"estimate: A100's x {bandwidth:.0f}/{A100_BANDWIDTH:.0f} GB/s"
    return GpuRate(name, rate, basis, False)


GPUS = (
    _scaled("T4 (16 GB)", 320.0),
    _scaled("A10G (24 GB)", 600.0),
    GpuRate("RTX 3090", TIMM_MBV2_3090, "timm, PyTorch AMP, batch 512", True),
    GpuRate("A100, float32/TF32", FLAGPERF_A100_FP32, "FlagPerf, 8 GPUs / 8, compute only", True),
    GpuRate(
        "A100 (80 GB)",
        A100_MBV2,
        f"estimate: NVIDIA's TF2 EfficientNet-B0 {DLE_B0_A100:.0f} img/s x {MBV2_PER_B0:.2f} "
        "(MobileNetV2/B0 in timm)",
        False,
    ),
    _scaled("H100 SXM", 3350.0),
)


def cores_needed(gpu_rate: float, per_core_rate: float) -> float:
    """CPU cores whose feed (images per core-second) matches ``gpu_rate`` images/s."""
    return gpu_rate / per_core_rate


# -- measuring ----------------------------------------------------------------------------


def cpu_rate(run: Callable[[], int]) -> tuple[float, float]:
    """Runs ``run`` (it returns an image count); (images/s, images per CPU-second of
    this process, all its threads)."""
    cpu, wall = time.process_time(), time.perf_counter()
    count = run()
    return count / (time.perf_counter() - wall), count / (time.process_time() - cpu)


def count_images(ds) -> int:
    """Iterates a batched dataset (the work is done); how many images it gave."""
    return sum(int(batch[0].shape[0]) for batch in ds)


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


class Tflite:
    """A TensorFlow Lite model called on batches (XNNPACK, this machine's cores)."""

    def __init__(self, content: bytes):
        import tensorflow as tf

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tf.lite.Interpreter's deprecation notice
            self.interpreter = tf.lite.Interpreter(
                model_content=content, num_threads=os.cpu_count()
            )
        self.input = self.interpreter.get_input_details()[0]["index"]
        self.output = self.interpreter.get_output_details()[0]["index"]
        self.size = len(content)
        self.batch = 0

    def __call__(self, images: np.ndarray) -> np.ndarray:
        if len(images) != self.batch:
            self.interpreter.resize_tensor_input(self.input, list(images.shape))
            self.interpreter.allocate_tensors()
            self.batch = len(images)
        self.interpreter.set_tensor(self.input, images)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output).copy()


def tflite_models(model, calibration: np.ndarray) -> dict[str, Tflite]:
    """The model converted to TensorFlow Lite: float32, and int8 (weights and
    activations, float input and output) calibrated on ``calibration`` images."""
    import tensorflow as tf

    def representative():
        for image in calibration:
            yield [image[None]]

    out = {}
    for name in ("float32", "int8"):
        converter = tf.lite.TFLiteConverter.from_keras_model(model)
        if name == "int8":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
            converter.representative_dataset = representative
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        with contextlib.redirect_stdout(io.StringIO()):  # Keras's export lists every tensor
            out[name] = Tflite(converter.convert())
    return out


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


def augmented_feed(method: str, cached: bool = False) -> str:
    """The name of the feed variant with augmentation ``method`` (``layers``, ``fused``):
    decoded every epoch, or ``cached`` (augmentation alone)."""
    kind = "augment (cached decoded images)" if cached else f"{DECODE} + augment"
    return f"{kind}, {AUGMENTATIONS[method]}"


def feed_rates(data_dir: Path, rounds: int) -> dict[str, list[tuple[float, float]]]:
    """(images/s, images/CPU-s) of the trainer's training pipeline on the ``images``
    train split at 224 px, per epoch: no cache without augmentation and with each
    augmentation, and each augmentation alone over a memory cache (filled first)."""
    from logo_batch.data.pipeline import load_split, make_dataset
    from logo_batch.training.augment import AugmentConfig, make_augment_fn

    split = load_split(data_dir, "images", "train")

    def pipeline(method: str | None, cache: str):
        augment = None if method is None else make_augment_fn(AugmentConfig(method=method))
        return make_dataset(
            split.records,
            image_size=IMAGE_SIZE,
            batch_size=BATCH_SIZE,
            training=True,
            num_classes=len(split.logo_class_names),
            cache=cache,
            augment=augment,
            seed=0,
        )

    datasets = {DECODE: pipeline(None, "none")}
    for cached in (False, True):
        for method in AUGMENTATIONS:
            datasets[augmented_feed(method, cached)] = pipeline(
                method, "memory" if cached else "none"
            )
    for ds in datasets.values():
        count_images(ds)  # traces, fills the cache
    rates: dict[str, list[tuple[float, float]]] = {name: [] for name in datasets}
    for _ in range(rounds):
        for name, ds in datasets.items():
            rates[name].append(cpu_rate(lambda ds=ds: count_images(ds)))
    return rates


def median(values) -> float:
    return float(np.median(values))


def per_cpu_of(rates: dict[str, list[tuple[float, float]]], name: str) -> float:
    """The median images/CPU-s of one measured variant."""
    return median([r[1] for r in rates[name]])


def feed_rows(feed: dict[str, list[tuple[float, float]]]) -> list[Row]:
    """The training feed per core rows of :func:`feed_rates`' measurements, each over
    decode + resize alone (the fused ones also over the Keras layers')."""
    per_core = {name: per_cpu_of(feed, name) for name in feed}
    rows = []
    for name, runs in feed.items():
        note = f"{median([r[0] for r in runs]):,.1f} img/s on this machine"
        for cached in (False, True):
            if name == augmented_feed("fused", cached):
                layers = per_core[augmented_feed("layers", cached)]
                note += f"; {per_core[name] / layers:.2f}x the Keras layers"
        rows.append(
            Row(f"training feed per core, images train split 224 px: {name}", per_core[name],
                "img/CPU-s", per_core[name] / per_core[DECODE], DECODE, note)
        )  # fmt: skip
    return rows


def cores_table(feed: dict[str, list[tuple[float, float]]]) -> list[str]:
    """The cores-per-GPU table (Markdown lines) for :func:`feed_rates`' measurements: with
    each augmentation on the CPU, the trainer's default ``--augmentation`` marked, and
    with the augmentation on the GPU (the CPU decodes and resizes only)."""
    from logo_batch.training.config import TrainConfig

    default = TrainConfig.augmentation
    decode = per_cpu_of(feed, DECODE)
    on_cpu = {method: per_cpu_of(feed, augmented_feed(method)) for method in AUGMENTATIONS}
    rates = "; ".join(
        f"{on_cpu[method]:,.0f} img/CPU-s with `--augmentation {method}` on the CPU"
        for method in AUGMENTATIONS
    )
    columns = " | ".join(
        f"cores, {method} on CPU" + (" (trainer default)" if method == default else "")
        for method in AUGMENTATIONS
    )
    table = [
        "Cores to keep one GPU busy training MobileNetV2 at 224 px (GPU images/s divided by "
        f"the feed per core measured above: {rates}; {decode:,.0f} with the augmentation "
        f"on the GPU; the trainer's default is `--augmentation {default}`):",
        "",
        f"| GPU | MobileNetV2 224 px training, img/s | source | {columns} | "
        "cores, augment on GPU |",
        "|---|---|---|" + "---|" * len(AUGMENTATIONS) + "---|",
    ]
    for gpu in GPUS:
        cores = " | ".join(
            f"{cores_needed(gpu.images_per_second, on_cpu[method]):,.0f}"
            for method in AUGMENTATIONS
        )
        table.append(
            f"| {gpu.name} | {gpu.images_per_second:,.0f} | {gpu.basis} | {cores} | "
            f"{cores_needed(gpu.images_per_second, decode):,.0f} |"
        )
    return table


# -- the section ---------------------------------------------------------------------------


def detected() -> tuple[str, str, str]:
    """(one line on this machine, the training policy ``auto`` picks, the inference one)."""
    import tensorflow as tf

    from logo_batch.inference import cpu as cpu_lib
    from logo_batch.training import distribute

    cpu = cpu_lib.cpu_features()
    gpus = len(tf.config.list_physical_devices("GPU"))
    model = "unknown CPU"
    with contextlib.suppress(OSError):
        for line in Path(cpu_lib.CPUINFO).read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    policy = distribute.resolve_precision("auto")
    line = f"{os.cpu_count()} cores ({model}): {cpu.describe()}; {gpus} GPU(s)"
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
    lite = tflite_models(model, calibration)
    bf16 = low_precision_model(model, MIXED_BFLOAT16)
    predictors = {
        "float32, eager model call": lambda x: np.asarray(model(x, training=False)),
        "float32, predict_scores (compiled graph)": lambda x: predict_scores(model, x),
        "mixed_bfloat16, predict_scores (compiled graph)": lambda x: predict_scores(bf16, x),
        "float32, Keras predict_on_batch": lambda x: model.predict_on_batch(x),
        "TFLite float32 (XNNPACK)": lite["float32"],
        "TFLite int8 (post-training quantization)": lite["int8"],
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
            note += f"; {lite[name.split()[1]].size / 2**20:.1f} MiB"
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
