"""One engine measured in a process of its own (for :mod:`benchmarks.bench_engines`):
load time, images/s and images per CPU-second at batch 32, peak memory, and its scores.

    python -m benchmarks.engine_child ENGINE MODEL_FILE INPUTS.npy OUT_PREFIX --threads N

ENGINE: ``tf-float32`` (MODEL_FILE a bundle folder: its Keras model as one traced graph),
``tflite`` (a ``.tflite`` file), ``onnxruntime`` (an ``.onnx`` file), ``openvino`` (an
OpenVINO ``.xml`` model). Writes OUT_PREFIX.json (figures) and OUT_PREFIX.npy (scores).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time

import numpy as np

BATCH = 32


def load(engine: str, path: str, threads: int):
    """A callable ``float32 [B, S, S, 3] -> scores`` for the engine."""
    if engine == "tf-float32":
        from logo_batch.inference.bundle import load_keras_model
        from logo_batch.inference.engines import predict_scores

        model = load_keras_model(path)
        return lambda x: predict_scores(model, x)
    if engine in ("tflite", "tflite-batched"):
        from logo_batch.inference.engines import INVOKE_BATCH, TfliteModel

        invoke = BATCH if engine == "tflite-batched" else INVOKE_BATCH  # before 2026-12-08
        with open(path, "rb") as handle:
            return TfliteModel(handle.read(), threads, invoke_batch=invoke)
    if engine == "onnxruntime":
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        session = ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda x: session.run(None, {name: x})[0]
    if engine == "openvino":
        import openvino as ov

        config = {
            "PERFORMANCE_HINT": "LATENCY",
            "INFERENCE_NUM_THREADS": threads,
            "INFERENCE_PRECISION_HINT": "f32",  # float32 like the others, not bf16/f16
        }
        compiled = ov.Core().compile_model(path, "CPU", config)
        request = compiled.create_infer_request()
        output = compiled.output(0)
        return lambda x: request.infer({0: x})[output].copy()
    raise ValueError(f"unknown engine {engine!r}")


LIBRARIES = {"tf-float32": "tensorflow", "tflite": "tensorflow", "tflite-batched": "tensorflow",
             "onnxruntime": "onnxruntime", "openvino": "openvino"}  # fmt: skip


def peak_rss_mb() -> float:
    """This process's peak resident memory (``VmHWM``: unlike ``ru_maxrss``, not carried
    over from the parent that forked it)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("engine")
    parser.add_argument("model")
    parser.add_argument("inputs")
    parser.add_argument("out")
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--rounds", type=int, default=8)
    args = parser.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    inputs = np.load(args.inputs).astype(np.float32)
    __import__(LIBRARIES[args.engine])  # the library's import is not the model's load time
    start = time.perf_counter()
    run = load(args.engine, args.model, args.threads)
    run(inputs[:BATCH])  # the first call: tracing, delegate set-up, allocation
    load_seconds = time.perf_counter() - start
    batch = inputs[:BATCH]
    walls, cpus = [], []
    for _ in range(args.rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        run(batch)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    scores = np.concatenate(
        [np.asarray(run(inputs[i : i + BATCH])) for i in range(0, len(inputs), BATCH)]
    )
    np.save(args.out + ".npy", scores.astype(np.float32))
    figures = {
        "load_seconds": load_seconds,
        "images_per_second": BATCH / statistics.median(walls),
        "images_per_cpu_second": BATCH / statistics.median(cpus),
        "peak_rss_mb": peak_rss_mb(),
    }
    with open(args.out + ".json", "w") as handle:
        json.dump(figures, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
