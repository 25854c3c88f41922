"""Cores to keep one GPU busy training MobileNetV2 at 224 px: the training feed per core
measured here (:func:`feed_rates`), and GPUs' published (or estimated from published)
training rates (:data:`GPUS`); part of :mod:`benchmarks.bench_devices` (section 6)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from benchmarks.common import Row, count_images, cpu_rate, median, per_cpu_of

IMAGE_SIZE = 224
BATCH_SIZE = 32
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
