"""Accuracy probe (issue 10): do windows proposed by a map trained on the boxes find the
small logos the grid misses? Not a speed benchmark.

An objectness map is learned from the logo boxes of the ``images`` train photos (never
from validation or query photos): the shared MobileNetV2 base, frozen, runs once over
each photo resized to S x S (``--size``, default 672), and a small convolutional head on
its stride-16 features (``block_13_expand_relu``) learns per cell whether a logo box
covers the cell's centre (or has its centre in the cell), and that box's height and
width (log of the fraction of the photo's side). A photo's proposals are the ``k``
highest local maxima of its map; each becomes windows of the predicted box times each
margin (at least 16 pixels a side), cropped and resized as whole-photo windows are and
classified by the bundle.

Reported, for several ``k`` and margins: the map's recall on the validation photos
(share of boxes whose centre lies in one of the proposals' windows at margin 1.5), and,
pooled with the grid's 14 windows or alone (a brand's max over the windows), the
validation top-1, the threshold chosen on validation photos + background windows
(:func:`logo_batch.evaluation.photo_metrics.choose_photo_threshold`, as whole-photo mode chooses
it) and the query set counted at it. Window scores are cached in ``--cache``.

    python -m experiments.probe_proposals BUNDLE --data-dir /work/tfds \\
        --weights /work/shared/weights/mobilenet_v2_1.0_imagenet_derived_no_top.weights.h5
"""

from __future__ import annotations

import argparse
import itertools
import sys
import time
from pathlib import Path

import numpy as np

from experiments.probe_whole_photo_views import (
    background_bundle,
    default_cache,
    photo_row,
    pool,
    save_scores,
    window_scores,
)

FEATURE_LAYER = "block_13_expand_relu"  # stride 16, 576 channels
MARGINS = (1.0, 1.5, 2.5)
MAX_PROPOSALS = 8
MIN_SIDE = 16  # pixels: no proposal window smaller
POSITIVE_WEIGHT = 5.0  # logo cells are rare: weight them in the loss


def feature_extractor(weights: str, size: int, bundle=None):
    """``uint8``-range ``[B, size, size, 3]`` -> the frozen base's stride-16 features;
    ``weights`` a base weights file, or ``bundle`` for the bundle's own (fine-tuned) base."""
    import keras
    import tensorflow as tf

    from logo_batch.training.models import backbone_of, build_backbone

    base = build_backbone("mobilenet_v2", size, "none" if weights == "bundle" else weights)
    if weights == "bundle":
        base.set_weights(backbone_of(bundle.model).get_weights())
    trunk = keras.Model(base.input, base.get_layer(FEATURE_LAYER).output)
    spec = tf.TensorSpec([None, size, size, 3], tf.float32)
    return tf.function(lambda x: trunk(x / 127.5 - 1.0, training=False), input_signature=[spec])


def features(extract, images, size: int, batch: int = 8) -> np.ndarray:
    """``float16 [N, g, g, C]``: each photo resized to ``size`` x ``size`` (as training
    resizes, aspect not kept) through the frozen base."""
    from logo_batch.inference.preprocessing import resize_image

    out, pending = [], []
    for image in itertools.chain(images, [None]):
        if image is not None:
            pending.append(resize_image(image, size).numpy())
        if pending and (image is None or len(pending) == batch):
            out.append(extract(np.stack(pending)).numpy().astype(np.float16))
            pending = []
    return np.concatenate(out)


def targets(boxes: list[np.ndarray], grid: int) -> np.ndarray:
    """``float32 [N, g, g, 3]``: per cell, 1 where a box covers the cell's centre or has
    its centre in the cell, and that box's log height and width (fractions of the
    photo's sides; the smallest box wins where boxes overlap)."""
    out = np.zeros((len(boxes), grid, grid, 3), np.float32)
    centres = (np.arange(grid) + 0.5) / grid
    for n, photo_boxes in enumerate(boxes):
        sizes = [(b[2] - b[0]) * (b[3] - b[1]) for b in photo_boxes]
        for ymin, xmin, ymax, xmax in np.asarray(photo_boxes)[np.argsort(sizes)[::-1]]:
            if ymax <= ymin or xmax <= xmin:
                continue  # the archive's zero-area box
            cells = np.outer(
                (centres >= ymin) & (centres <= ymax), (centres >= xmin) & (centres <= xmax)
            )
            cy = min(int((ymin + ymax) / 2 * grid), grid - 1)
            cx = min(int((xmin + xmax) / 2 * grid), grid - 1)
            cells[cy, cx] = True
            out[n][cells] = (1.0, np.log(ymax - ymin), np.log(xmax - xmin))
    return out


def objectness_loss(y_true, y_pred):
    """Weighted logistic loss over the cells, plus a Huber loss on the box size of the
    logo cells."""
    import tensorflow as tf

    logo = y_true[..., 0]
    weight = 1.0 + (POSITIVE_WEIGHT - 1.0) * logo
    cross = tf.nn.sigmoid_cross_entropy_with_logits(labels=logo, logits=y_pred[..., 0])
    error = tf.abs(y_true[..., 1:] - y_pred[..., 1:])
    huber = tf.reduce_sum(tf.where(error < 1.0, 0.5 * error**2, error - 0.5), axis=-1)
    return tf.reduce_sum(cross * weight) / tf.reduce_sum(weight) + tf.reduce_sum(
        huber * logo
    ) / tf.maximum(tf.reduce_sum(logo), 1.0)


def train_objectness(feats: np.ndarray, truth: np.ndarray, seed: int, epochs: int = 20):
    """The head: ``[g, g, C]`` features -> ``[g, g, 3]`` (logo logit, log height, log
    width), trained on the train photos' boxes."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    inputs = keras.Input(feats.shape[1:])
    x = keras.layers.Conv2D(64, 1, activation="relu")(inputs)
    x = keras.layers.Conv2D(64, 3, padding="same", activation="relu")(x)
    head = keras.Model(inputs, keras.layers.Conv2D(3, 1)(x))
    head.compile(keras.optimizers.Adam(1e-3), loss=objectness_loss)
    data = (
        tf.data.Dataset.from_tensor_slices((feats, truth))
        .shuffle(len(feats), seed=seed)
        .map(lambda f, t: (tf.cast(f, tf.float32), t))
        .batch(16)
    )
    head.fit(data, epochs=epochs, verbose=0)
    return head


def proposals(pred: np.ndarray, height: int, width: int, k: int = MAX_PROPOSALS) -> np.ndarray:
    """``int32 [k * len(MARGINS), 4]`` windows ``(x0, y0, x1, y1)`` of a photo: around
    each of the ``k`` highest local maxima of its map ``pred`` (``[g, g, 3]``), the
    predicted box times each margin (peak-major order)."""
    logit = pred[..., 0]
    grid = logit.shape[0]
    padded = np.pad(logit, 1, constant_values=-np.inf)
    neighbours = np.max(
        [padded[dy : dy + grid, dx : dx + grid] for dy in range(3) for dx in range(3)], axis=0
    )
    ranked = np.where(logit >= neighbours, logit, -np.inf).ravel()
    windows = []
    for index in np.argsort(-ranked, kind="stable")[:k]:
        row, col = divmod(int(index), grid)
        cy, cx = (row + 0.5) / grid * height, (col + 0.5) / grid * width
        box_h, box_w = np.exp(pred[row, col, 1]) * height, np.exp(pred[row, col, 2]) * width
        for margin in MARGINS:
            h = min(height, max(MIN_SIDE, box_h * margin))
            w = min(width, max(MIN_SIDE, box_w * margin))
            x0 = int(np.clip(round(cx - w / 2), 0, width - max(1, round(w))))
            y0 = int(np.clip(round(cy - h / 2), 0, height - max(1, round(h))))
            windows.append((x0, y0, x0 + max(1, round(w)), y0 + max(1, round(h))))
    return np.asarray(windows, np.int32)


def proposal_windows(head, extract, images, size: int) -> list[np.ndarray]:
    """Every photo's proposal windows (see :func:`proposals`)."""
    images = list(images)
    maps = head.predict(features(extract, images, size).astype(np.float32), verbose=0)
    return [proposals(m, *image.shape[:2]) for m, image in zip(maps, images, strict=True)]


def recall(windows: list[np.ndarray], boxes: list[np.ndarray], shapes, k: int) -> float:
    """Share of boxes whose centre lies in one of a photo's first ``k`` proposals'
    windows at margin 1.5."""
    found = total = 0
    margin = MARGINS.index(1.5)
    for photo_windows, photo_boxes, (height, width) in zip(windows, boxes, shapes, strict=True):
        chosen = photo_windows.reshape(MAX_PROPOSALS, len(MARGINS), 4)[:k, margin]
        for ymin, xmin, ymax, xmax in photo_boxes:
            cy, cx = (ymin + ymax) / 2 * height, (xmin + xmax) / 2 * width
            total += 1
            found += bool(
                np.any(
                    (chosen[:, 0] <= cx)
                    & (cx < chosen[:, 2])
                    & (chosen[:, 1] <= cy)
                    & (cy < chosen[:, 3])
                )
            )
    return found / max(total, 1)


def scored(bundle, images, windows: list[np.ndarray]) -> np.ndarray:
    """``[N, P, C]``: the bundle's softmax of every photo's windows."""
    from logo_batch.inference.engines import predict_scores
    from logo_batch.inference.whole_photo import window_inputs

    return np.stack(
        [
            predict_scores(bundle.model, window_inputs(image, w, bundle.image_size))
            for image, w in zip(images, windows, strict=True)
        ]
    )


def collect(bundle, args, cache: Path) -> dict[str, np.ndarray]:
    """Grid and proposal window scores of the validation photos, their background windows
    and the query photos, and the map's recall on validation."""
    from logo_batch.data import pipeline as data_lib
    from logo_batch.evaluation import photo_metrics
    from logo_batch.inference.preprocessing import decode_image_tf

    if cache.exists():
        with np.load(cache) as stored:
            return dict(stored)
    start = time.perf_counter()
    train = list(data_lib.load_photos(args.data_dir, "train").as_numpy_iterator())
    extract = feature_extractor(args.weights, args.size, bundle)
    train_images = [decode_image_tf(jpeg).numpy() for jpeg, _ in train]
    feats = features(extract, train_images, args.size)
    truth = targets([boxes for _, boxes in train], feats.shape[1])
    del train_images
    head = train_objectness(feats, truth, args.seed)
    del feats
    print(f"objectness map trained: {time.perf_counter() - start:.0f} s", file=sys.stderr)

    out: dict[str, np.ndarray] = {}
    splits = {
        "val": photo_metrics.split_photos(args.data_dir, "validation"),
        "neg": (photo_metrics.negative_crops(args.data_dir, "validation"), None),
        "test": photo_metrics.split_photos(args.data_dir, "test"),
    }
    for name, (images, labels) in splits.items():
        images = list(images)
        windows = proposal_windows(head, extract, images, args.size)
        out[f"{name}_grid"] = window_scores(bundle, images, "grid")
        out[f"{name}_prop"] = scored(bundle, images, windows)
        if labels is not None:
            out[f"{name}_labels"] = labels
        if name == "val":
            boxes = [
                b for _, b in data_lib.load_photos(args.data_dir, "validation").as_numpy_iterator()
            ]
            shapes = [image.shape[:2] for image in images]
            out["val_recall"] = np.array(
                [recall(windows, boxes, shapes, k) for k in range(1, MAX_PROPOSALS + 1)]
            )
        print(f"{name}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    save_scores(cache, out)
    return out


def table(scores: dict[str, np.ndarray], background: int) -> list[str]:
    """One row per (views, k, margins, pooling): validation top-1, threshold, query."""
    recall_k = scores["val_recall"]
    lines = [
        "validation recall (box centre in one of the first k proposals at margin 1.5): "
        + ", ".join(f"k={k} {r:.3f}" for k, r in enumerate(recall_k, start=1)),
        "",
        "| views | k | margins | pooling | validation photos top-1 | threshold "
        "| query logo photos top-1 | query correct and accepted | query `none` rejected |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    margin_sets = [(m,) for m in MARGINS] + [MARGINS]
    rows = [("grid", 0, ())] + [
        (views, k, margins)
        for views in ("grid+prop", "prop")
        for k in (1, 3, 5, MAX_PROPOSALS)
        for margins in margin_sets
    ]
    for (views, k, margins), rule in itertools.product(rows, ("max", "top2")):

        def pooled(split, views=views, k=k, margins=margins, rule=rule):
            parts = [scores[f"{split}_grid"]] if views.startswith("grid") else []
            if k:
                prop = scores[f"{split}_prop"]
                prop = prop.reshape(len(prop), MAX_PROPOSALS, len(MARGINS), -1)[:, :k]
                chosen = [MARGINS.index(m) for m in margins]
                parts.append(prop[:, :, chosen].reshape(len(prop), k * len(chosen), -1))
            return pool(parts, rule, background)

        row = photo_row(
            pooled("val"),
            scores["val_labels"],
            pooled("neg"),
            pooled("test"),
            scores["test_labels"],
        )
        lines.append(
            f"| {views} | {k or '-'} | {'/'.join(map(str, margins)) or '-'} | {rule} {row}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle trained with --background")
    parser.add_argument("--data-dir", required=True, help="TFDS data dir with flickr_logos27")
    parser.add_argument(
        "--weights", required=True, help="MobileNetV2 base weights file, or 'bundle'"
    )
    parser.add_argument("--size", type=int, default=672, help="objectness input side")
    parser.add_argument("--seed", type=int, default=42, help="objectness head's seed")
    parser.add_argument("--cache", type=Path, help="scores file (default: /tmp, per bundle)")
    args = parser.parse_args(argv)

    bundle, background = background_bundle(parser, args.bundle)
    cache = args.cache or default_cache(
        args.bundle, "proposals_", args.weights, args.size, args.seed
    )
    scores = collect(bundle, args, cache)
    print("\n".join(table(scores, background)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
