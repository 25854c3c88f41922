"""Accuracy probe (issue 10): which views of a photo, and which way of pooling them,
answer best? Not a speed benchmark.

A trained background bundle scores the validation photos, the background windows cut
from them (:func:`logo_batch.evaluation.photo_metrics.negative_crops`) and the query photos (the
``images`` test split) through each of these views, keeping every window's softmax:

- ``grid``: today's whole-photo mode, the 14 windows of
  :data:`logo_batch.inference.whole_photo.DEFAULT_GRID`;
- ``4x0.3``, ``5x0.25``: finer grids, n x n windows of f of each side, cropped and
  resized as the grid's are;
- ``224``, ``448``, ``672``: a score map. The photo is resized to S x S, the bundle's
  backbone runs once over it, and the bundle's head is applied to every 7 x 7
  neighbourhood of the feature map: a dense sliding window of 224/S of each side at a
  stride of 32/S (S = 224 is the single whole-photo view).

For each combination of views and each pooling (``max``: a brand's highest score in any
window, today's rule; ``top2``: the mean of its two highest; ``least_bg``: the scores of
the window with the lowest background probability), the rejection threshold is chosen
on validation (:func:`logo_batch.evaluation.photo_metrics.choose_photo_threshold`) and the query
set is counted at it. The window scores are cached in ``--work``.

    python -m experiments.probe_whole_photo_views BUNDLE --data-dir /work/tfds
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import itertools
import sys
import time
from pathlib import Path

import numpy as np

VIEWS = ("grid", "224", "448", "672", "4x0.3", "5x0.25")
COMBINATIONS = (
    "grid", "448", "672", "224+448", "224+448+672", "grid+448", "grid+672",
    "grid+4x0.3", "grid+4x0.3+5x0.25",
)  # fmt: skip


@functools.cache
def score_map_model(model, backbone: str):
    """The bundle's model as a score map: any S x S input to ``[h, w, C]`` softmax, the
    head applied to every 7 x 7 neighbourhood of the backbone's feature map."""
    import keras

    from logo_batch.inference.layers import ScalePixels
    from logo_batch.training.models import BACKBONES, backbone_of

    base = backbone_of(model)
    scale = next(layer for layer in model.layers if isinstance(layer, ScalePixels))
    dense = model.get_layer("predictions")
    flexible = BACKBONES[backbone].build(
        input_shape=(None, None, 3), weights=None, include_top=False
    )
    flexible.set_weights(base.get_weights())
    inputs = keras.Input((None, None, 3))
    x = ScalePixels(scale.mode)(inputs)
    x = flexible(x, training=False)
    x = keras.layers.AveragePooling2D(7, strides=1)(x)
    head = keras.layers.Dense(dense.units, activation="softmax")
    outputs = head(x)
    head.set_weights(dense.get_weights())
    return keras.Model(inputs, outputs)


def window_scores(bundle, images, view: str) -> np.ndarray:
    """``[N, P, C]``: every window's softmax, per photo."""
    import tensorflow as tf

    from logo_batch.inference.engines import predict_scores
    from logo_batch.inference.preprocessing import resize_image
    from logo_batch.inference.whole_photo import DEFAULT_GRID, photo_stack

    if view == "grid" or "x" in view:
        n, fraction = view.split("x") if "x" in view else (0, 0)
        grid = DEFAULT_GRID if view == "grid" else ((int(n), float(fraction)),)
        stacks = (photo_stack(image, bundle.image_size, grid).inputs for image in images)
        return np.stack([predict_scores(bundle.model, inputs) for inputs in stacks])
    size = int(view)
    model = score_map_model(bundle.model, bundle.metadata.backbone)
    spec = tf.TensorSpec([None, None, None, 3], tf.float32)
    forward = tf.function(lambda t: model(t, training=False), input_signature=[spec])
    rows = []
    for image in images:
        scores = forward(resize_image(image, size)[None]).numpy()[0]
        rows.append(scores.reshape(-1, scores.shape[-1]))
    return np.stack(rows)


def collect(bundle, data_dir: str, cache: Path) -> dict[str, np.ndarray]:
    """Window scores of every view on validation photos, negatives and query photos."""
    from logo_batch.evaluation import photo_metrics

    out: dict[str, np.ndarray] = {}
    if cache.exists():
        with np.load(cache) as stored:
            out = dict(stored)
    for view in VIEWS:
        if f"test_{view}" in out:
            continue
        start = time.perf_counter()
        images, out["val_labels"] = photo_metrics.split_photos(data_dir, "validation")
        out[f"val_{view}"] = window_scores(bundle, images, view)
        negatives = photo_metrics.negative_crops(data_dir, "validation")
        out[f"neg_{view}"] = window_scores(bundle, negatives, view)
        images, out["test_labels"] = photo_metrics.split_photos(data_dir, "test")
        out[f"test_{view}"] = window_scores(bundle, images, view)
        print(f"{view}: {time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    save_scores(cache, out)
    return out


def save_scores(cache: Path, scores: dict[str, np.ndarray]) -> None:
    """Writes the scores file whole or not at all (a partial file, then a rename)."""
    cache.parent.mkdir(parents=True, exist_ok=True)
    partial = cache.with_suffix(".partial.npz")
    np.savez(partial, **scores)
    partial.replace(cache)


def pool(parts: list[np.ndarray], rule: str, background: int) -> np.ndarray:
    """``[N, K]`` brand scores of a photo from its windows' ``[N, P, C]`` softmax."""
    windows = np.concatenate(parts, axis=1)
    brands = np.delete(windows, background, axis=2)
    if rule == "max":
        return brands.max(axis=1)
    if rule == "top2":
        return np.sort(brands, axis=1)[:, -2:].mean(axis=1)
    if rule == "least_bg":
        return brands[np.arange(len(brands)), windows[:, :, background].argmin(axis=1)]
    raise ValueError(rule)


def table(scores: dict[str, np.ndarray], background: int) -> list[str]:
    lines = [
        "| views | pooling | validation photos top-1 | threshold | query logo photos top-1 "
        "| query correct and accepted | query `none` rejected |",
        "|---|---|---|---|---|---|---|",
    ]
    val_labels, test_labels = scores["val_labels"], scores["test_labels"]
    for combination, rule in itertools.product(COMBINATIONS, ("max", "top2", "least_bg")):
        views = combination.split("+")

        def pooled(split, views=views, rule=rule):
            return pool([scores[f"{split}_{v}"] for v in views], rule, background)

        row = photo_row(pooled("val"), val_labels, pooled("neg"), pooled("test"), test_labels)
        lines.append(f"| {combination} | {rule} {row}")
    return lines


def photo_row(val, val_labels, negatives, test, test_labels) -> str:
    """A table row's last cells from pooled brand scores ``[N, K]``: validation top-1, the
    threshold chosen on validation photos + negatives, and the query set counted at it."""
    from logo_batch.evaluation.metrics import compute_metrics
    from logo_batch.evaluation.photo_metrics import choose_photo_threshold

    threshold = choose_photo_threshold(val, val_labels, negatives)
    query = compute_metrics(test, test_labels, threshold)
    return (
        f"| {np.mean(val.argmax(1) == val_labels):.3f} | {threshold:.3f} "
        f"| {query['accuracy']:.3f} | {query['logo_accepted_and_correct']:.3f} "
        f"| {query['none_rejected']:.3f} |"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path, help="a bundle trained with --background")
    parser.add_argument("--data-dir", required=True, help="TFDS data dir with flickr_logos27")
    parser.add_argument(
        "--cache", type=Path, help="window scores file (default: in /tmp, per bundle)"
    )
    args = parser.parse_args(argv)

    bundle, background = background_bundle(parser, args.bundle)
    cache = args.cache or default_cache(args.bundle)
    scores = collect(bundle, args.data_dir, cache)
    print("\n".join(table(scores, background)))
    return 0


def background_bundle(parser: argparse.ArgumentParser, path: Path):
    """The bundle at ``path`` and its background class's index (a usage error without one)."""
    from logo_batch.inference.bundle import load_bundle

    bundle = load_bundle(path)
    meta = bundle.metadata
    if not meta.background_class:
        parser.error(f"{path}: the bundle has no background class")
    return bundle, list(meta.class_names).index(meta.background_class)


def default_cache(bundle: Path, prefix: str = "", *key: object) -> Path:
    """A scores file in /tmp named after the bundle's model file (path and time) and ``key``."""
    from logo_batch.inference.bundle import MODEL_FILE

    model_file = bundle.resolve() / MODEL_FILE
    stamp = ":".join(map(str, (model_file, model_file.stat().st_mtime_ns, *key)))
    name = f"{prefix}{hashlib.sha256(stamp.encode()).hexdigest()[:12]}.npz"
    return Path("/tmp/logo_batch_probe") / name


if __name__ == "__main__":
    sys.exit(main())
