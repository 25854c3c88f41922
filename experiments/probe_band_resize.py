"""Probe (issue 27): ``resize_array`` against its NumPy-split predecessor: same pixels?
how much faster?

Over the archive's photos (``--count``; all by default): each photo decoded for a 224
and a 128 px input, and every fourth window of whole mode's grid, resized by today's
:func:`~logo_batch.inference.preprocessing.resize_array` (bands split and made float by
Pillow) and by the version before 2026-12-08 (the photo made float by NumPy, each band
copied out); the largest pixel difference, and the milliseconds a 224 px resize takes
(best of 7 per photo, over the first 150 photos, one thread).

    python -m experiments.probe_band_resize [--archive A] [--count N]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

WORK = Path(tempfile.gettempdir()) / "logo_batch_probe_band_resize"


def numpy_split(image: np.ndarray, size: int) -> np.ndarray:
    """``resize_array`` as it was until 2026-12-08."""
    pixels = np.asarray(image, dtype=np.float32)
    channels = [
        np.asarray(
            Image.fromarray(np.ascontiguousarray(pixels[..., c])).resize(
                (size, size), Image.Resampling.BILINEAR
            )
        )
        for c in range(3)
    ]
    return np.clip(np.stack(channels, axis=-1), 0.0, 255.0)


def best_ms(resize, images: list[np.ndarray], repeats: int = 7) -> float:
    """Mean over images of the best of ``repeats`` 224 px resizes, milliseconds."""
    times = []
    for image in images:
        best = float("inf")
        for _ in range(repeats):
            start = time.perf_counter()
            resize(image, 224)
            best = min(best, time.perf_counter() - start)
        times.append(best)
    return 1e3 * float(np.mean(times))


def main(argv=None) -> int:
    from benchmarks.common import extract_images, real_archive
    from logo_batch.inference.preprocessing import load_image, resize_array
    from logo_batch.inference.whole_photo import photo_windows

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=real_archive())
    parser.add_argument("--count", type=int, default=0, help="photos (0: all)")
    args = parser.parse_args(argv)
    photos = sorted(extract_images(args.archive, WORK))[: args.count or None]
    worst, resizes = 0.0, 0
    for photo in photos:
        full = load_image(photo)
        crops = [load_image(photo, resize_to=s) for s in (224, 128)]
        sizes = [224, 128]
        for x0, y0, x1, y1 in photo_windows(*full.shape[:2])[::4]:
            crops.append(full[y0:y1, x0:x1])
            sizes.append(224)
        for image, size in zip(crops, sizes, strict=True):
            difference = np.abs(resize_array(image, size) - numpy_split(image, size)).max()
            worst, resizes = max(worst, float(difference)), resizes + 1
    sample = [load_image(p, resize_to=224) for p in photos[:150]]
    print(f"{len(photos)} photos, {resizes} resizes: largest pixel difference {worst}")
    print(f"224 px resize, best of 7: today {best_ms(resize_array, sample):.2f} ms, "
          f"before {best_ms(numpy_split, sample):.2f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
