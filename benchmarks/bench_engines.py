"""Benchmark 9: engines side by side, one run, the same bundle and the same images.

Each engine runs MobileNetV2 at the bundle's input size (224 px) in a process of its own
(:mod:`benchmarks.engine_child`): the project's TensorFlow graph (``tf-float32``, the
baseline), TensorFlow Lite float32 with XNNPACK on 1 thread and on every core, TensorFlow
Lite int8, and ONNX Runtime and OpenVINO where their packages are installed (``pip
install onnxruntime tf2onnx openvino``; the table says when they are not). For each:
images/s and images per CPU-second at batch 32 (TensorFlow Lite invokes one image at a
time, :data:`~logo_batch.inference.engines.INVOKE_BATCH`; its "batched" rows invoke all
32 at once, as before 2026-12-08); load time (model load and first call,
after the library's import); peak memory (VmHWM); the largest absolute score difference
from the Keras model called eagerly and the share of equal top-1 labels on the query
photos (the ``images`` test split, each photo resized whole); and the fraction of this
CPU's float32 peak (:mod:`benchmarks.cpu_peak`).

    python -m benchmarks.bench_engines --data-dir D --bundle BUNDLE
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.common import Row, Section, python_command
from benchmarks.cpu_peak import cpu_peak, multiply_adds

QUERY_PHOTOS = 270


def query_inputs(data_dir: Path, image_size: int, count: int) -> np.ndarray:
    """The first ``count`` photos of the ``images`` test split as single-view inputs."""
    from logo_batch.data import pipeline as data_lib

    records = data_lib.load_split(data_dir, "images", "test").records.take(count)
    ds = data_lib.make_dataset(records, image_size=image_size, batch_size=32, cache="none")
    return np.concatenate([images for images, _ in ds.as_numpy_iterator()])


def engine_files(bundle: Path, work: Path, inputs: np.ndarray) -> dict[str, tuple[str, str, str]]:
    """``{row name: (child engine, model path, conversion note)}``: the bundle's TensorFlow
    Lite files (converted here when it has none) and the ONNX / OpenVINO models."""
    from logo_batch.evaluation.quantize import convert_int8
    from logo_batch.evaluation.tflite_export import convert_float32
    from logo_batch.inference import engines
    from logo_batch.inference.bundle import load_keras_model
    from tfds_flickr27.parallel import cpu_count

    model = load_keras_model(bundle)
    files: dict[str, tuple[str, str, str]] = {
        "TF graph (tf-float32)": ("tf-float32", str(bundle), "")
    }
    float32 = bundle / engines.TFLITE_FILE
    if not float32.is_file():
        float32 = work / "model.tflite"
        float32.write_bytes(convert_float32(model))
    files["TFLite float32, 1 thread"] = ("tflite@1", str(float32), "")
    files[f"TFLite float32, {cpu_count()} threads"] = ("tflite", str(float32), "")
    before = "invoked 32 images at a time, as before 2026-12-08"
    files["TFLite float32, 1 thread, batched"] = ("tflite-batched@1", str(float32), before)
    files[f"TFLite float32, {cpu_count()} threads, batched"] = (
        "tflite-batched",
        str(float32),
        before,
    )
    int8 = bundle / engines.INT8_FILE
    note = "the bundle's (logo-batch quantize)"
    if not int8.is_file():
        int8, note = work / "model.int8.tflite", "calibrated here on 64 query inputs"
        int8.write_bytes(convert_int8(model, list(inputs[:64])))
    files["TFLite int8"] = ("tflite", str(int8), note)
    try:
        import onnxruntime  # noqa: F401
        import tensorflow as tf
        import tf2onnx

        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        forward = tf.function(lambda x: model(x, training=False), input_signature=[spec])
        start = time.perf_counter()
        proto, _ = tf2onnx.convert.from_function(forward, input_signature=[spec], opset=17)
        onnx = work / "model.onnx"
        onnx.write_bytes(proto.SerializeToString())
        note = f"tf2onnx {tf2onnx.__version__}, converted in {time.perf_counter() - start:.0f} s"
        files["ONNX Runtime float32"] = ("onnxruntime", str(onnx), note)
    except ImportError as error:
        files["ONNX Runtime float32"] = ("", "", f"not installed ({error.name})")
    try:
        import openvino as ov

        xml = work / "model.xml"
        ov.save_model(ov.convert_model(str(float32)), str(xml))
        files["OpenVINO float32"] = (
            "openvino",
            str(xml),
            f"OpenVINO {ov.__version__}, from model.tflite",
        )
    except ImportError as error:
        files["OpenVINO float32"] = ("", "", f"not installed ({error.name})")
    return files


def measure(engine: str, path: str, inputs_file: Path, out: Path) -> tuple[dict, np.ndarray]:
    """Runs :mod:`benchmarks.engine_child` for one engine; its figures and scores."""
    from tfds_flickr27.parallel import cpu_count

    name, _, threads = engine.partition("@")
    command = python_command(
        "-m", "benchmarks.engine_child", name, path, str(inputs_file), str(out),
        "--threads", threads or str(cpu_count()),
    )  # fmt: skip
    subprocess.run(command, check=True, capture_output=True)
    return json.loads(out.with_suffix(".json").read_text()), np.load(out.with_suffix(".npy"))


def bench_engines(
    data_dir: Path, bundle: Path | None, work: Path, count: int = QUERY_PHOTOS
) -> Section:
    from logo_batch.inference.bundle import load_keras_model

    work.mkdir(parents=True, exist_ok=True)
    if bundle is None:
        from benchmarks.bench_whole_photo import make_bundle

        bundle = make_bundle(work, [])
    model = load_keras_model(bundle)
    size = int(model.input_shape[1])
    inputs = query_inputs(data_dir, size, count)
    reference = np.concatenate(
        [model(inputs[i : i + 32], training=False).numpy() for i in range(0, len(inputs), 32)]
    )
    inputs_file = work / "inputs.npy"
    np.save(inputs_file, inputs)
    peak = cpu_peak()
    flops = 2 * multiply_adds(model)
    section = Section(f"9. Engines: MobileNetV2 at {size} px, batch 32, {len(inputs)} query photos")
    baseline = None
    for row, (engine, path, note) in engine_files(bundle, work, inputs).items():
        if not engine:
            section.rows.append(Row(row, 0.0, "img/s", None, "", note))
            continue
        slug = "".join(c if c.isalnum() else "_" for c in row.lower())
        figures, scores = measure(engine, path, inputs_file, work / slug)
        rate = figures["images_per_second"]
        baseline = baseline or rate
        detail = (
            f"{figures['images_per_cpu_second']:.1f} img/CPU-s; "
            f"load {figures['load_seconds']:.1f} s; peak {figures['peak_rss_mb']:.0f} MB; "
            f"max |score - Keras| "
            f"{np.max(np.abs(scores - reference)):.1e}; top-1 agreement "
            f"{np.mean(scores.argmax(1) == reference.argmax(1)):.3f}; "
            f"{rate * flops / 1e9 / peak.gflops:.2f} of the float32 peak"
        )
        section.rows.append(
            Row(
                row,
                rate,
                "img/s",
                rate / baseline,
                "TF graph",
                "; ".join(filter(None, [detail, note])),
            )
        )
    section.notes.append(
        f"Float32 peak: {peak.describe()} (cores from the affinity mask, lanes and FMA units "
        f"from the CPU flags, clock from /proc/cpuinfo's nominal `cpu MHz`). MobileNetV2 at "
        f"{size} px: {flops / 2e9:.2f} G multiply-adds per image."
    )
    return section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--data-dir", type=Path, required=True, help="TFDS data with flickr_logos27/images"
    )
    parser.add_argument(
        "--bundle", type=Path, help="a trained bundle (default: untrained MobileNetV2)"
    )
    parser.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "logo_batch_engines"
    )
    args = parser.parse_args(argv)
    print(bench_engines(args.data_dir, args.bundle, args.work).text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
