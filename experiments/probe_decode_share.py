"""Probe (issue 27): how much of the Beam job's CPU time per photo is not the model.

On one core, per photo of a folder: CPU seconds to decode and resize it as the job
does (``preprocess_image_file``), and to run the bundle's ``model.tflite`` on it (one
LiteRT thread, batches of 32, as each local worker runs it). A job that does both on
every core can reach at most ``model / (model + decode)`` of the engine's batched
ceiling (the model alone on in-memory tensors).

    python -m experiments.probe_decode_share BUNDLE FOLDER [--count 300]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

BATCH = 32


def cpu_seconds(fn) -> float:
    start = time.process_time()
    fn()
    return time.process_time() - start


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=320)
    args = parser.parse_args(argv)
    from logo_batch.inference import engines
    from logo_batch.inference.bundle import read_metadata
    from logo_batch.inference.preprocessing import preprocess_image_file

    size = read_metadata(args.bundle).image_size
    files = sorted(args.folder.iterdir())[: args.count]
    model = engines.load_tflite(args.bundle, engines.TFLITE_FILE, num_threads=1)
    inputs: list[np.ndarray] = []
    decode = cpu_seconds(lambda: inputs.extend(preprocess_image_file(f, size) for f in files))
    batches = [np.stack(inputs[i : i + BATCH]) for i in range(0, len(inputs), BATCH)]
    model(batches[0])  # warm up
    infer = cpu_seconds(lambda: [model(b) for b in batches])
    per_decode, per_model = decode / len(files) * 1e3, infer / len(files) * 1e3
    print(f"{len(files)} photos, {size} px, one core: decode + resize {per_decode:.2f} ms, "
          f"model {per_model:.2f} ms a photo; bound on a job doing both: "
          f"{per_model / (per_model + per_decode):.2f} of the batched ceiling")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
