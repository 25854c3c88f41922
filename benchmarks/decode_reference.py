"""Decode + downscale per core: ours against the fastest single-thread decoder here.

Every method turns JPEG bytes held in memory into a ``size`` x ``size`` picture on one
thread, with the JPEG decoded downscaled in the DCT domain where the library can:

- ours: ``tf.data`` on a one-thread pool,
  :func:`logo_batch.inference.preprocessing.decode_and_resize_tf`
  (``decode_jpeg(ratio=...)`` + antialiased bilinear to float32), what training runs
  per core;
- ours, predict/Beam side: :func:`~logo_batch.inference.preprocessing.preprocess_image_file`
  (Pillow ``draft`` + the same resize, eager), one call per file;
- references, each when installed: Pillow ``draft`` + ``resize(BILINEAR)`` (Pillow's
  resize is antialiased); simplejpeg's scaled decode (``min_height``/``min_width``) +
  OpenCV ``INTER_AREA``; OpenCV ``IMREAD_REDUCED_COLOR_2/4/8`` (the ratio from the
  header, read by Pillow) + ``INTER_AREA``.

Speed is images per CPU-second of this process (``time.process_time``), best of
``repeats``: on a shared machine CPU time per image is what one core does, wall time
is whatever the other jobs leave.
"""

from __future__ import annotations

import io
import time
from collections.abc import Callable, Sequence

import numpy as np

Decoder = Callable[[bytes], object]


def _pillow(size: int) -> Decoder:
    from PIL import Image

    def decode(data: bytes) -> np.ndarray:
        image = Image.open(io.BytesIO(data))
        image.draft(
            "RGB", (size, size)
        )  # the ratio of logo_batch.inference.preprocessing.dct_ratio
        return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR))

    return decode


def _simplejpeg(size: int) -> Decoder:
    import cv2
    import simplejpeg

    cv2.setNumThreads(1)

    def decode(data: bytes) -> np.ndarray:
        image = simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=size, min_width=size)
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    return decode


def _opencv(size: int) -> Decoder:
    import cv2

    from logo_batch.inference.preprocessing import dct_ratio

    cv2.setNumThreads(1)
    flags = {
        1: cv2.IMREAD_COLOR,
        2: cv2.IMREAD_REDUCED_COLOR_2,
        4: cv2.IMREAD_REDUCED_COLOR_4,
        8: cv2.IMREAD_REDUCED_COLOR_8,
    }

    def decode(data: bytes) -> np.ndarray:
        from PIL import Image

        width, height = Image.open(io.BytesIO(data)).size  # header only
        image = cv2.imdecode(np.frombuffer(data, np.uint8), flags[dct_ratio(height, width, size)])
        return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)

    return decode


REFERENCES: dict[str, tuple[str, Callable[[int], Decoder]]] = {
    "Pillow draft + resize(BILINEAR)": ("PIL", _pillow),
    "simplejpeg scaled decode + cv2 INTER_AREA": ("simplejpeg", _simplejpeg),
    "OpenCV IMREAD_REDUCED + INTER_AREA": ("cv2", _opencv),
}


def _installed(module: str) -> bool:
    import importlib.util

    return importlib.util.find_spec(module) is not None


def cpu_rates(runs: dict[str, Callable[[], None]], count: int, repeats: int) -> dict[str, float]:
    """Images per CPU-second of this process for each run, the best of ``repeats``
    rounds that run every one in turn (a load change hits them all alike)."""
    for run in runs.values():
        run()  # warm up (imports, graph tracing)
    best = dict.fromkeys(runs, float("inf"))
    for _ in range(repeats):
        for name, run in runs.items():
            start = time.process_time()
            run()
            best[name] = min(best[name], time.process_time() - start)
    return {name: count / seconds for name, seconds in best.items()}


def _loop(decode: Decoder, datas: Sequence[bytes]) -> Callable[[], None]:
    def run() -> None:
        for data in datas:
            decode(data)

    return run


def _one_thread_tf_data(datas: Sequence[bytes], fn) -> Callable[[], None]:
    """A run of ``fn`` over every JPEG in ``tf.data`` on a one-thread pool."""
    import tensorflow as tf

    options = tf.data.Options()
    options.threading.private_threadpool_size = 1
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False
    ds = (
        tf.data.Dataset.from_tensor_slices(list(datas))
        .map(fn, num_parallel_calls=1)
        .with_options(options)
    )

    def run() -> None:
        for _ in ds:
            pass

    return run


DECODE_ONLY = "tf.data, 1 thread: decode_image_tf only (the DCT-scaled decode, no resize)"


def decode_rates(
    datas: Sequence[bytes], size: int, repeats: int = 3
) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """``(references, ours, missing)``: images per CPU-second of each reference
    decoder installed here and of our two paths; the references not installed.

    ``ours`` also holds :data:`DECODE_ONLY`, the training path's decode without its
    resize, measured in the same rounds: what the resize costs is the difference.
    """
    import tensorflow as tf

    from logo_batch.inference.preprocessing import (
        decode_and_resize_tf,
        decode_image_tf,
        preprocess_image_file,
    )

    missing = [module for module, _ in REFERENCES.values() if not _installed(module)]
    runs = {
        name: _loop(make(size), datas)
        for name, (module, make) in REFERENCES.items()
        if _installed(module)
    }
    ours = {
        "tf.data, 1 thread: decode_and_resize_tf (training)": _one_thread_tf_data(
            datas, lambda jpeg: decode_and_resize_tf(jpeg, size)
        ),
        "preprocess_image_file (predict, Beam)": _loop(
            lambda data: preprocess_image_file(data, size), datas
        ),
        DECODE_ONLY: _one_thread_tf_data(
            datas, lambda jpeg: tf.shape(decode_image_tf(jpeg, resize_to=size))
        ),
    }
    rates = cpu_rates({**runs, **ours}, len(datas), repeats)
    return {name: rates[name] for name in runs}, {name: rates[name] for name in ours}, missing
