"""Speed probe (issue 11): can the resize of the shared preprocessing path be made
cheaper, and at what cost to the model inputs? Not part of ``benchmarks.run``.

Every photo of the archive is decoded as training decodes it for a ``--size`` input
(:func:`logo_batch.inference.preprocessing.decode_image_tf`: DCT-scaled, so the resize starts
from at most twice the input size on the short side), then resized to ``size`` x
``size`` float32 by each method, one image per call, in one traced graph on one thread:

- ``ours``: :func:`logo_batch.inference.preprocessing.resize_image` itself
  (``tf.image.resize(bilinear, antialias=True)``, TensorFlow's ScaleAndTranslate
  kernel, then a clip to [0, 255], which every method here gets);
- ``gather``: the same triangle filter composed from TensorFlow ops (two gathers of
  the taps and weighted sums): the same pixels up to float rounding;
- ``matmul``: the same filter as two dense weight matrices: the same pixels up to float
  rounding;
- ``bilinear``: bilinear without antialiasing (2 x 2 taps): other pixels where the
  image shrinks;
- ``area``: TensorFlow's area resize (box filter): other pixels everywhere.

It prints milliseconds of CPU per image (best of ``--repeats`` rounds, every method in
turn) and how far each method's pixels are from ours (mean and largest absolute
difference, on the 0-255 scale).

    python -m experiments.probe_resize --archive /work/shared/data/flickr_logos_27_dataset.tar.gz
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import tensorflow as tf


def _taps(n_in: tf.Tensor, n_out: int) -> tuple[tf.Tensor, tf.Tensor]:
    """Indices ``[n_out, K]`` and weights of the antialiased triangle filter along one
    axis (half-pixel centres; the kernel widened by the shrink factor)."""
    inv = tf.cast(n_in, tf.float32) / n_out
    width = tf.maximum(inv, 1.0)
    centre = (tf.range(n_out, dtype=tf.float32) + 0.5) * inv
    taps = tf.cast(tf.math.ceil(2.0 * width), tf.int32) + 1
    index = tf.cast(tf.math.floor(centre - width), tf.int32)[:, None] + tf.range(taps)[None]
    weight = tf.maximum(
        0.0, 1.0 - tf.abs(tf.cast(index, tf.float32) + 0.5 - centre[:, None]) / width
    )
    weight = tf.where((index >= 0) & (index < n_in), weight, 0.0)
    weight /= tf.reduce_sum(weight, axis=1, keepdims=True)
    return tf.clip_by_value(index, 0, n_in - 1), weight


def _dense(n_in: tf.Tensor, n_out: int) -> tf.Tensor:
    """The same filter as a ``[n_out, n_in]`` matrix."""
    index, weight = _taps(n_in, n_out)
    return tf.reduce_sum(tf.one_hot(index, n_in) * weight[:, :, None], axis=1)


def methods(size: int) -> dict[str, tf.types.experimental.GenericFunction]:
    """The resize methods probed, each ``uint8 [H, W, 3] -> float32 [size, size, 3]``,
    clipped to [0, 255] as ours is."""
    from logo_batch.inference.preprocessing import resize_image

    def ours(image):
        return resize_image(image, size)  # traced: the library's graph, clip included

    def gather(image):
        rows, row_weight = _taps(tf.shape(image)[0], size)
        cols, col_weight = _taps(tf.shape(image)[1], size)
        image = tf.cast(image, tf.float32)
        tall = tf.reduce_sum(tf.gather(image, rows) * row_weight[:, :, None, None], axis=1)
        wide = tf.reduce_sum(tf.gather(tall, cols, axis=1) * col_weight[None, :, :, None], 2)
        return tf.clip_by_value(wide, 0.0, 255.0)

    def matmul(image):
        rows, cols = _dense(tf.shape(image)[0], size), _dense(tf.shape(image)[1], size)
        tall = tf.tensordot(rows, tf.cast(image, tf.float32), axes=[[1], [0]])
        return tf.clip_by_value(tf.einsum("pw,owc->opc", cols, tall), 0.0, 255.0)

    def bilinear(image):
        resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), antialias=False)
        return tf.clip_by_value(resized, 0.0, 255.0)

    def area(image):
        resized = tf.image.resize(tf.cast(image, tf.float32), (size, size), method="area")
        return tf.clip_by_value(resized, 0.0, 255.0)

    return {
        fn.__name__: tf.function(fn, reduce_retracing=True)
        for fn in (ours, gather, matmul, bilinear, area)
    }


def decoded_photos(archive: Path, work: Path, size: int, limit: int) -> list[tf.Tensor]:
    """The archive's photos decoded as training decodes them for a ``size`` input."""
    from benchmarks.common import extract_images
    from logo_batch.inference.preprocessing import decode_image_tf

    paths = extract_images(archive, work / "images" / archive.stem)[:limit]
    return [decode_image_tf(tf.constant(path.read_bytes()), resize_to=size) for path in paths]


def probe(images: list[tf.Tensor], size: int, repeats: int) -> list[str]:
    """One line per method: CPU ms per image, and its pixels' distance from ours."""
    runs = methods(size)
    outputs = {name: [fn(image) for image in images] for name, fn in runs.items()}  # traces
    # The floor: a traced call per image that only casts it.
    timed_runs = {
        **runs,
        "cast only": tf.function(lambda x: tf.cast(x, tf.float32), reduce_retracing=True),
    }
    for image in images:
        timed_runs["cast only"](image)
    best = dict.fromkeys(timed_runs, float("inf"))
    for _ in range(repeats):
        for name, fn in timed_runs.items():
            start = time.process_time()
            for image in images:
                fn(image)
            best[name] = min(best[name], time.process_time() - start)
    lines = [f"{len(images)} photos, {size} px; a call that only casts: "
             f"{1e3 * best['cast only'] / len(images):.2f} ms/image"]  # fmt: skip
    for name in runs:
        pairs = zip(outputs[name], outputs["ours"], strict=True)
        diff = np.concatenate([np.abs(a.numpy() - b.numpy()).ravel() for a, b in pairs])
        lines.append(
            f"{name:9s} {1e3 * best[name] / len(images):6.2f} ms/image "
            f"({best['ours'] / best[name]:.2f}x ours)   pixels vs ours: "
            f"mean {diff.mean():.4f}, max {diff.max():.4f}"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", type=Path, help="FlickrLogos-27 archive (default: real)")
    parser.add_argument("--work", type=Path, default=Path("/tmp/logo_batch_bench"))
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--limit", type=int, default=300, help="photos probed")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    from benchmarks.common import real_archive

    archive = args.archive or real_archive()
    images = decoded_photos(archive, args.work, args.size, args.limit)
    if not images:
        parser.error(f"{archive}: no JPEG photos found in it")
    print("\n".join(probe(images, args.size, args.repeats)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
