"""Accuracy probe (issue 28, lever 4): a one-pass detector on the boxes.

A CenterNet-style head (Zhou et al. 2019, "Objects as Points") on the frozen shared
MobileNetV2 base's stride-16 features (``block_13_expand_relu``) of the photo resized to
S x S (default 672 px: 42 x 42 cells): per cell and brand a heat (sigmoid) that peaks at
the centres of that brand's boxes (Gaussian targets, radius from the box size), trained with
CenterNet's penalty-reduced focal loss on the ``images`` train photos' boxes only. A
photo's score for a brand is its heat map's maximum; the answer is the top brand when it
reaches the threshold chosen on the validation photos plus background windows (as
whole-photo mode chooses it), else none. One backbone pass per photo at S px (about
(S/224)^2 model calls: 9 at 672).

Reported: validation top-1, the threshold, and the query set counted at it (logo photos
top-1, recall = right and accepted, `none` rejected), for the detector alone and pooled
with the bundle's 14-window grid (a brand's max of the grid score and the heat).

    python -m experiments.probe_detector BUNDLE --data-dir D --weights W
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from experiments.probe_proposals import feature_extractor, features
from experiments.probe_whole_photo_views import (
    background_bundle,
    default_cache,
    photo_row,
    save_scores,
    window_scores,
)

EPOCHS = 30


def heat_targets(boxes, labels, grid: int, num_brands: int) -> np.ndarray:
    """``float32 [N, g, g, K]``: per brand a Gaussian peak (1 at the cell holding each box's
    centre) with sigma from the box's size in cells (CenterNet's radius rule, simplified)."""
    out = np.zeros((len(boxes), grid, grid, num_brands), np.float32)
    ys, xs = np.mgrid[0:grid, 0:grid] + 0.5
    for n, (photo_boxes, photo_labels) in enumerate(zip(boxes, labels, strict=True)):
        for (ymin, xmin, ymax, xmax), label in zip(photo_boxes, photo_labels, strict=True):
            if ymax <= ymin or xmax <= xmin or label >= num_brands:
                continue
            cy, cx = (ymin + ymax) / 2 * grid, (xmin + xmax) / 2 * grid
            h, w = (ymax - ymin) * grid, (xmax - xmin) * grid
            sigma = max(0.5, min(h, w) / 6.0)
            peak = np.exp(-((ys - cy) ** 2 + (xs - cx) ** 2) / (2 * sigma**2))
            iy, ix = min(int(cy), grid - 1), min(int(cx), grid - 1)
            peak[iy, ix] = 1.0
            out[n, :, :, label] = np.maximum(out[n, :, :, label], peak)
    return out


def focal_loss(y_true, y_pred):
    """CenterNet's penalty-reduced pixel-wise focal loss (alpha 2, beta 4), over logits."""
    import tensorflow as tf

    p = tf.clip_by_value(tf.sigmoid(y_pred), 1e-4, 1.0 - 1e-4)
    positive = tf.cast(y_true >= 1.0, tf.float32)
    pos = -tf.math.log(p) * (1.0 - p) ** 2 * positive
    neg = -tf.math.log(1.0 - p) * p**2 * (1.0 - y_true) ** 4 * (1.0 - positive)
    return (tf.reduce_sum(pos) + tf.reduce_sum(neg)) / tf.maximum(tf.reduce_sum(positive), 1.0)


def train_detector(feats: np.ndarray, truth: np.ndarray, seed: int):
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(feats.shape[1:])
    # 1x1 reduce, then one 3x3: CenterNet's head shape at a cost this CPU can train in
    # minutes (two 3x3 convolutions over 576 channels took over an hour for 40 epochs).
    x = keras.layers.Conv2D(128, 1, activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    bias = keras.initializers.Constant(-4.6)  # CenterNet: prior 0.01
    out = keras.layers.Conv2D(truth.shape[-1], 1, bias_initializer=bias)(x)
    head = keras.Model(inputs, out)
    head.compile(keras.optimizers.Adam(1e-3), loss=focal_loss)
    data = (
        tf.data.Dataset.from_tensor_slices((feats, truth))
        .shuffle(len(feats), seed=seed)
        .map(lambda f, t: (tf.cast(f, tf.float32), t))
        .batch(16)
    )
    head.fit(data, epochs=EPOCHS, verbose=0)
    return head


def photo_heat(head, feats: np.ndarray) -> np.ndarray:
    """``[N, K]``: each brand's heat maximum (sigmoid) over a photo's cells."""
    logits = head.predict(feats.astype(np.float32), verbose=0, batch_size=16)
    return 1.0 / (1.0 + np.exp(-logits.max(axis=(1, 2))))


def collect(bundle, args, cache: Path, num_brands: int) -> dict[str, np.ndarray]:
    from logo_batch.data import pipeline as data_lib
    from logo_batch.evaluation import photo_metrics
    from logo_batch.inference.preprocessing import decode_image_tf

    if cache.exists():
        with np.load(cache) as stored:
            return dict(stored)
    start = time.perf_counter()
    extract = feature_extractor(args.weights, args.size, bundle)
    photos = list(
        data_lib.load_boxed_photos(
            args.data_dir, data_lib.split_filenames(args.data_dir, "images", "train")
        ).as_numpy_iterator()
    )
    feats = features(extract, (decode_image_tf(j).numpy() for j, _, _ in photos), args.size)
    truth = heat_targets(
        [b for _, b, _ in photos], [lab for _, _, lab in photos], feats.shape[1], num_brands
    )
    head = train_detector(feats, truth, args.seed)
    del feats, truth
    print(f"detector trained: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    out = {}
    splits = {
        "val": photo_metrics.split_photos(args.data_dir, "validation"),
        "neg": (photo_metrics.negative_crops(args.data_dir, "validation"), None),
        "test": photo_metrics.split_photos(args.data_dir, "test"),
    }
    for name, (images, labels) in splits.items():
        images = list(images)
        out[f"{name}_heat"] = photo_heat(head, features(extract, images, args.size))
        out[f"{name}_grid"] = window_scores(bundle, images, "grid")
        if labels is not None:
            out[f"{name}_labels"] = labels
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    save_scores(cache, out)
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle trained with --background")
    parser.add_argument("--data-dir", required=True)
    parser.add_argument(
        "--weights", required=True, help="MobileNetV2 base weights file, or 'bundle'"
    )
    parser.add_argument("--size", type=int, default=672)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--cache", type=Path)
    args = parser.parse_args(argv)
    bundle, background = background_bundle(parser, args.bundle)
    num_brands = len(bundle.metadata.class_names) - 1
    cache = args.cache or default_cache(
        args.bundle, "detector_", args.weights, args.size, args.seed
    )
    s = collect(bundle, args, cache, num_brands)
    grid = {
        k: np.delete(s[f"{k}_grid"].max(axis=1), background, axis=1) for k in ("val", "neg", "test")
    }
    print(
        "| views | validation photos top-1 | threshold | query logo photos top-1 "
        "| query recall (right and accepted) | query `none` rejected |"
    )
    print("|---|---|---|---|---|---|")
    for name, pick in (
        ("grid (whole-photo mode)", lambda k: grid[k]),
        ("detector alone", lambda k: s[f"{k}_heat"]),
        ("grid + detector, max", lambda k: np.maximum(grid[k], s[f"{k}_heat"])),
    ):
        print(
            f"| {name} "
            + photo_row(pick("val"), s["val_labels"], pick("neg"), pick("test"), s["test_labels"])
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
