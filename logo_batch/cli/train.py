"""``logo-batch train``: the command line of :func:`logo_batch.training.train`."""

from __future__ import annotations

import argparse

from logo_batch.arguments import add_option, matching_args
from logo_batch.cli.dataset_errors import run_reporting
from logo_batch.options import BATCH_SIZE
from logo_batch.training import distribute, models
from logo_batch.training.augment import METHODS
from logo_batch.training.config import AUGMENT_ON_VALUES, NUMBER_RULES, TrainConfig
from logo_batch.training.trainer import train


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Every option in both spellings (``--fine-tune-epochs`` = ``--fine_tune_epochs``)."""
    d = TrainConfig(data_dir="", output_dir="")

    def a(name: str, **kwargs) -> None:
        rule = NUMBER_RULES.get(name.lstrip("-").replace("-", "_"))
        if rule is not None:  # a number: its check, made while parsing (exit 2)
            kwargs["type"] = rule
        add_option(parser, name, **kwargs)

    a("--data-dir", required=True, help="TFDS data_dir holding the prepared dataset")
    a("--output-dir", required=True, help="run folder (rerun the same command to resume)")
    a("--config", default=d.config, choices=("crops", "images"))
    a("--image-size", default=None, help="pixels (default 224; seed head 128)")
    a("--backbone", default=d.backbone, choices=sorted(models.BACKBONES))
    a("--weights", default=d.weights, help="imagenet, none, or a base weights file (no top)")
    a("--head", default=d.head, choices=models.HEADS, help="default, avgmax or seed")
    a("--dropout", default=d.dropout)
    a("--epochs", default=None, help="head-phase epochs (30 on features, else 10)")
    a("--fine-tune-epochs", default=None, help="default 12; 0 for the seed head")
    a("--fine-tune-fraction", default=d.fine_tune_fraction)
    BATCH_SIZE.add_to(parser, help=f"global batch size (default {BATCH_SIZE.default})")
    a("--learning-rate", default=d.learning_rate)
    a("--fine-tune-learning-rate", default=d.fine_tune_learning_rate)
    a("--lr-schedule", choices=("cosine", "constant"), default=None)
    a("--label-smoothing", default=None)
    a("--class-weights", action="store_true", help="balanced class weights")
    a("--no-augment", dest="augment", action="store_false")
    a(
        "--augment-on",
        choices=AUGMENT_ON_VALUES,
        default=d.augment_on,
        help="where training augments: cpu (tf.data pipeline), device (in the training "
        "step, on the accelerator: the CPU only decodes), auto (device with a GPU)",
    )
    a(
        "--head-on-images",
        dest="head_on_features",
        action="store_false",
        help="train the head on augmented images, not on cached features of the frozen base",
    )
    a(
        "--augmentation",
        choices=METHODS,
        default=d.augmentation,
        help="fused (default): one warp and one colour matrix per image (4x less CPU); "
        "layers: Keras's preprocessing layers one after another (the recipe until 2026-12)",
    )
    a("--blur", default=d.blur, help="random Gaussian blur strength (0 = off)")
    a(
        "--background",
        default=d.background,
        metavar="N",
        help="learn a 'none' class from N windows with no logo per training photo "
        "(default %(default)s: the photo recipe; 0 = off)",
    )
    a(
        "--context",
        default=d.context,
        metavar="N",
        help="also learn N windows per logo box of the training photos, the box with "
        "random context around it (the box covers --context-coverage to 100%% of the "
        "window's area), labelled with its brand: like the windows whole-photo mode "
        "scores (default %(default)s: the photo recipe; 0 = off)",
    )
    a(
        "--crops-only",
        action="store_true",
        help="train on the logo crops alone (no background class, no context, pasted or "
        "grid windows): a model for folders of logo crops, not of ordinary photos",
    )
    a(
        "--context-coverage",
        default=d.context_coverage,
        metavar="F",
        help="the smallest share of a context window's area its logo box covers "
        "(default %(default)s; smaller: smaller logos in the windows)",
    )
    a(
        "--low-res",
        default=d.low_res,
        metavar="P",
        help="with probability P a training image is shrunk to a small logo's size (16-80 "
        "px) and enlarged back, as inference enlarges a window (0 = off)",
    )
    a(
        "--paste",
        default=d.paste,
        metavar="N",
        help="also learn N synthetic windows per training crop: the crop pasted small "
        "(8-50%% of the side, tilted, recoloured, soft edges) into a no-logo window of a "
        "training photo, labelled with its brand (0 = off)",
    )
    a(
        "--grid-windows",
        action="store_true",
        help="also learn the whole-photo grid's windows of the training photos, labelled "
        "by overlap with the boxes (a logo >= 70%% inside: its brand; none: background)",
    )
    a("--cache", default=d.cache, help="memory, none, or a folder for file caches")
    a("--shuffle-buffer", default=d.shuffle_buffer)
    a("--early-stopping-patience", default=d.early_stopping_patience)
    a("--rejection-keep", default=d.rejection_keep)
    a(
        "--mixed-precision",
        choices=distribute.PRECISION_VALUES,
        default=d.mixed_precision,
        help="auto: float16 on a GPU, bfloat16 on a CPU with AMX, else off; on: float16",
    )
    a("--xla", choices=distribute.SWITCH_VALUES, default=d.xla)
    a("--strategy", choices=distribute.STRATEGIES, default=d.strategy)
    a("--seed", default=d.seed)
    a(
        "--steps-per-epoch",
        default=None,
        help="steps of an epoch (default: the whole batches of one pass over the crops and "
        "background windows; the other windows share those steps)",
    )
    for role in ("train", "validation", "test"):
        a(
            f"--{role}-split",
            default=getattr(d, f"{role}_split"),
            help=f"TFDS split for {role} (slicing works: {role}[:50%%])",
        )
    a(
        "--no-serving-export",
        dest="export_serving",
        action="store_false",
        help="do not write serving/ (the TensorFlow SavedModel for TF Serving)",
    )
    a(
        "--no-tflite-export",
        dest="export_tflite",
        action="store_false",
        help="do not write model.tflite (the float32 TensorFlow Lite engine that "
        "--precision auto runs on CPUs)",
    )
    a(
        "--dataset",
        default=d.dataset,
        metavar="NAME",
        help=f"TFDS dataset in --data-dir (default {d.dataset}; your own: the NAME given "
        "to logo-batch dataset build)",
    )


CROPS_ONLY = {"background": 0, "context": 0, "paste": 0, "grid_windows": False}


def run(args: argparse.Namespace) -> int:
    values = matching_args(TrainConfig, args)
    if getattr(args, "crops_only", False):
        values.update(CROPS_ONLY)
    config = TrainConfig(**values)
    result = run_reporting(
        "train", lambda: train(config), config.data_dir, config.dataset, (models.WeightsError,)
    )
    if result is None:
        return 1
    if result.is_chief:
        test = result.metrics["test"]
        print(f"bundle: {result.bundle_dir}")
        print(
            f"test accuracy: top-1 {test.get('accuracy', float('nan')):.4f}, "
            f"top-5 {test.get('top5_accuracy', float('nan')):.4f} "
            f"({test.get('num_logo', test.get('num_examples', '?'))} logo images)"
        )
    return 0
