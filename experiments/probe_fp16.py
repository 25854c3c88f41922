"""Probe (issue 27): the bundle's float32 ``model.tflite`` computed in float16 by XNNPACK.

LiteRT's ``CompiledModel`` takes XNNPACK flags; ``FORCE_FP16`` (4) runs the float32
model's convolutions in half precision, native on CPUs with AVX-512 FP16 (emulated,
slower, elsewhere). Over the first ``--count`` photos of a folder (single-mode inputs,
224 px): images per second on one thread, one image a call (as a Beam worker runs
it), of the engine the job uses (``TfliteModel``), of ``CompiledModel`` as it is, and
in float16; the largest softmax difference from the float32 engine and top-1 agreement.

    python -m experiments.probe_fp16 BUNDLE FOLDER [--count 270] [--threads 1]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

FORCE_FP16 = 4  # TFLITE_XNNPACK_DELEGATE_FLAG_FORCE_FP16


def images_per_second(model, inputs: np.ndarray, passes: int = 3) -> float:
    """Best of ``passes`` passes, one image a call."""
    model(inputs[:1])
    best = float("inf")
    for _ in range(passes):
        start = time.perf_counter()
        for index in range(len(inputs)):
            model(inputs[index : index + 1])
        best = min(best, time.perf_counter() - start)
    return len(inputs) / best


def compiled(path: Path, threads: int, flags: int | None, classes: int):
    """``CompiledModel`` on the CPU as a ``[B, S, S, 3] -> [B, C]`` callable."""
    from ai_edge_litert.compiled_model import CompiledModel
    from ai_edge_litert.hardware_accelerator import HardwareAccelerator
    from ai_edge_litert.options import CpuOptions, Options

    options = Options(
        hardware_accelerators=HardwareAccelerator.CPU,
        cpu_options=CpuOptions(num_threads=threads, xnnpack_flags=flags),
    )
    model = CompiledModel.from_file(str(path), options=options)
    inputs, outputs = model.create_input_buffers(0), model.create_output_buffers(0)

    def run(batch: np.ndarray) -> np.ndarray:
        scores = []
        for image in batch:
            inputs[0].write(np.ascontiguousarray(image[None]))
            model.run_by_index(0, inputs, outputs)
            scores.append(outputs[0].read(classes, np.float32))
        return np.stack(scores)

    return run


def main(argv=None) -> int:
    from logo_batch.inference import engines
    from logo_batch.inference.cpu import cpu_features
    from logo_batch.inference.preprocessing import is_image_path, preprocess_image_file

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("bundle", type=Path)
    parser.add_argument("folder", type=Path)
    parser.add_argument("--count", type=int, default=270)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    files = sorted(p for p in args.folder.iterdir() if is_image_path(str(p)))[: args.count]
    inputs = np.stack([preprocess_image_file(p, 224) for p in files])
    engine = engines.load_tflite(args.bundle, engines.TFLITE_FILE, num_threads=args.threads)
    reference = engine(inputs)
    classes = reference.shape[1]
    path = args.bundle / engines.TFLITE_FILE
    print(f"{len(files)} photos, {args.threads} thread(s); CPU: {cpu_features().describe()}")
    print(f"TfliteModel (the job's engine): {images_per_second(engine, inputs):.1f} img/s")
    for name, flags in (("CompiledModel", None), ("CompiledModel FORCE_FP16", FORCE_FP16)):
        model = compiled(path, args.threads, flags, classes)
        scores = model(inputs)
        agree = float(np.mean(scores.argmax(1) == reference.argmax(1)))
        difference = float(np.abs(scores - reference).max())
        print(f"{name}: {images_per_second(model, inputs):.1f} img/s, largest score "
              f"difference {difference:.4f}, top-1 agreement {agree:.3f}")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
