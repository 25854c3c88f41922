"""Probe (issue 27): a photo made float once, and batches sized without pickling.

Over the archive's photos (``--count``; all by default), against what the job did
until 2026-12-08:
- single mode: :func:`~logo_batch.inference.preprocessing.preprocess_image_file` (the
  decoded image split into float bands directly) against ``load_image`` then
  ``resize_array`` (a NumPy array between);
- whole mode: :func:`~logo_batch.inference.whole_photo.window_inputs` (the photo made
  float once, each window cropped from its bands) against ``resize_array`` of each
  window's crop of the array;
- Beam's size estimate of a batch of 32 decoded inputs: pickling it (the default
  coder's estimate) against :func:`~beam_jobs.batch_coder.payload_bytes`.
The largest pixel difference of each pair, and CPU milliseconds (best of 3 passes,
one thread).

    python -m experiments.probe_float_once [--archive A] [--count N]
"""

from __future__ import annotations

import argparse
import pickle
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

WORK = Path(tempfile.gettempdir()) / "logo_batch_probe_band_resize"  # shared extraction


def best_cpu_ms(fn, items, passes: int = 3) -> float:
    """CPU milliseconds an item, best of ``passes`` passes over ``items``."""
    best = float("inf")
    for _ in range(passes):
        start = time.process_time()
        for item in items:
            fn(item)
        best = min(best, time.process_time() - start)
    return 1e3 * best / len(items)


def main(argv=None) -> int:
    from beam_jobs.batch_coder import payload_bytes
    from beam_jobs.decoding import DecodedBatch
    from beam_jobs.file_facts import FileEntry
    from benchmarks.common import extract_images, real_archive
    from logo_batch.inference.preprocessing import (
        load_image,
        load_photo,
        preprocess_image_file,
        resize_array,
    )
    from logo_batch.inference.whole_photo import decode_side, photo_stack

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archive", default=real_archive())
    parser.add_argument("--count", type=int, default=0, help="photos (0: all)")
    args = parser.parse_args(argv)
    photos = sorted(extract_images(args.archive, WORK))[: args.count or None]

    def before_single(path):
        return resize_array(load_image(path, resize_to=224), 224)

    def before_windows(stack):
        return np.stack([resize_array(stack.image[y0:y1, x0:x1], 224)
                         for x0, y0, x1, y1 in stack.windows])  # fmt: skip

    stacks = [photo_stack(load_photo(p, min_side=decode_side(224))[0], 224) for p in photos]
    single = max(float(np.abs(preprocess_image_file(p, 224) - before_single(p)).max())
                 for p in photos)  # fmt: skip
    windows = max(float(np.abs(s.inputs - before_windows(s)).max()) for s in stacks)
    print(f"{len(photos)} photos: largest difference, single inputs {single}, "
          f"all {14 * len(stacks)} windows {windows}")  # fmt: skip
    sample, few = photos[:300], stacks[:60]
    today = best_cpu_ms(lambda p: preprocess_image_file(p, 224), sample)
    print(f"single mode, a photo: today {today:.2f} ms, "
          f"before {best_cpu_ms(before_single, sample):.2f} ms")  # fmt: skip
    today_w = best_cpu_ms(lambda s: s.inputs, few) / 14
    print(f"whole mode, a window: today {today_w:.2f} ms, "
          f"before {best_cpu_ms(before_windows, few) / 14:.2f} ms")  # fmt: skip
    batch = DecodedBatch([(FileEntry(str(p)), preprocess_image_file(p, 224)) for p in photos[:32]])
    pickled = best_cpu_ms(lambda b: pickle.dumps(b, pickle.HIGHEST_PROTOCOL), [batch] * 5)
    estimated = best_cpu_ms(payload_bytes, [batch] * 5)
    print(f"size of a batch of 32 inputs ({payload_bytes(batch) / 2**20:.1f} MiB): pickled "
          f"{pickled:.2f} ms, payload_bytes {estimated:.3f} ms")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
