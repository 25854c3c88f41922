"""Probe (issue 27): images per TensorFlow Lite call, and threads, against throughput.

For the bundle's ``model.tflite`` (and ``model.int8.tflite`` where it has one): images/s
and images per CPU-second of batches of 32 random inputs invoked ``k`` images at a time
(``TfliteModel(invoke_batch=k)``), for each ``k`` and thread count, each run for
``--seconds``; and the largest score difference from invoking all 32 at once.

    python -m experiments.probe_invoke_batch BUNDLE [--seconds 6]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

BATCH = 32
INVOKE_BATCHES = (1, 2, 4, 8, 16, 32)


def rate(model, inputs: np.ndarray, seconds: float) -> tuple[float, float]:
    """(images/s, images per CPU-second) of ``model`` on ``inputs`` for ``seconds``."""
    model(inputs)  # warm up: allocation, XNNPACK's packing
    done, wall, cpu = 0, time.perf_counter(), time.process_time()
    while time.perf_counter() - wall < seconds:
        done += len(model(inputs))
    return done / (time.perf_counter() - wall), done / (time.process_time() - cpu)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("--seconds", type=float, default=6.0)
    args = parser.parse_args(argv)
    from logo_batch.inference import engines
    from logo_batch.inference.cpu import cpu_features
    from tfds_flickr27.parallel import cpu_count

    print(f"CPU: {cpu_features().describe()}")
    for name in (engines.TFLITE_FILE, engines.INT8_FILE):
        path = args.bundle / name
        if not path.is_file():
            continue
        content = path.read_bytes()
        size = engines.TfliteModel(content, 1).input_shape[1]
        inputs = np.random.default_rng(0).uniform(0, 255, (BATCH, size, size, 3))
        inputs = inputs.astype(np.float32)
        reference = engines.TfliteModel(content, 1, invoke_batch=BATCH)(inputs)
        for threads in sorted({1, cpu_count()}):
            for invoke in INVOKE_BATCHES:
                model = engines.TfliteModel(content, threads, invoke_batch=invoke)
                wall, per_cpu = rate(model, inputs, args.seconds)
                difference = np.abs(model(inputs) - reference).max()
                print(f"{name}, {threads} thread(s), {invoke:2d} images a call: {wall:6.1f} "
                      f"img/s, {per_cpu:6.1f} img/CPU-s; max |score - 32 a call| "
                      f"{difference:.1e}", flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
