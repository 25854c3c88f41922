"""An int8 copy of a bundle's model, and the precision inference runs in.

CPUs with int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX: most cloud CPU workers
today) run a post-training-quantized model several times faster than TensorFlow's
float32 graph (``benchmarks/RESULTS.md``, section 6). ``logo-batch quantize`` converts
a bundle's model with TensorFlow Lite (weights and activations int8, float input and
output; calibrated on training images of the bundle's own dataset, and on windows of
training photos for a bundle with a background class), checks it on the validation
split against the float32 model, and adds ``model.int8.tflite`` to the bundle with the
figures in its metadata (``quantization``).

:func:`resolve_inference` picks what inference runs in, on the machine that runs it:
``auto`` is int8 when the bundle carries an int8 model that kept the float32
accuracy and this CPU has int8 dot products, else float32. ``logo-batch predict``,
``evaluate`` and the Beam job (in each worker) all load the model through
:func:`inference_model`.
"""

from __future__ import annotations

import contextlib
import io
import os
import threading
import warnings
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from logo_batch import console, distribute
from logo_batch.bundle import Bundle, BundleMetadata, open_bundle_file

if TYPE_CHECKING:
    import keras

INT8_FILE = "model.int8.tflite"
# --precision for inference: auto, off (float32), bfloat16, int8.
AUTO, OFF, BFLOAT16, INT8 = "auto", "off", "bfloat16", "int8"
PRECISIONS = (AUTO, OFF, BFLOAT16, INT8)
# The int8 model is used by `auto` only when its validation top-1 is at most this far
# below the float32 model's (one example of the 182 validation crops is 0.0055).
MAX_TOP1_DROP = 0.01


class Int8Model:
    """A TensorFlow Lite model called like :func:`logo_batch.predict.predict_scores`
    calls a model: ``float32 [B, S, S, 3]`` in, softmax scores ``float32 [B, C]`` out.

    One interpreter, resized to each batch size it meets, on ``num_threads`` threads
    (default: this machine's cores); calls are serialized (an interpreter is not
    thread-safe, and Beam may share one model between threads).
    """

    def __init__(self, content: bytes, num_threads: int | None = None):
        import tensorflow as tf

        # Quiet unless asked: the deprecation notice, and XNNPACK's "created delegate" line.
        with warnings.catch_warnings(), console.native_stderr_captured(not console.is_verbose()):
            warnings.simplefilter("ignore")
            self._interpreter = tf.lite.Interpreter(
                model_content=content, num_threads=num_threads or os.cpu_count() or 1
            )
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.input_shape = (None, *self._input["shape"][1:])
        self._batch = -1
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.shape[1:] != tuple(self.input_shape[1:]):
            raise ValueError(
                f"the int8 model takes inputs of shape {self.input_shape[1:]}, "
                f"not {images.shape[1:]}"
            )
        with self._lock:
            if len(images) != self._batch:
                self._interpreter.resize_tensor_input(self._input["index"], list(images.shape))
                self._interpreter.allocate_tensors()
                self._batch = len(images)
            self._interpreter.set_tensor(self._input["index"], images)
            self._interpreter.invoke()
            return self._interpreter.get_tensor(self._output).copy()


def convert_int8(model: keras.Model, calibration: Iterable[np.ndarray]) -> bytes:
    """``model`` as a TensorFlow Lite flatbuffer, weights and activations int8 (float
    input and output), its activation ranges calibrated on ``calibration`` (model
    inputs ``float32 [S, S, 3]``)."""
    import tensorflow as tf

    def representative() -> Iterator[list[np.ndarray]]:
        for image in calibration:
            yield [np.asarray(image, dtype=np.float32)[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    quiet = not console.is_verbose()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        console.native_stderr_captured(quiet),
    ):
        # The export lists every tensor; the float input has no statistics (by design).
        warnings.filterwarnings("ignore", "Statistics for quantized inputs")
        return converter.convert()


def has_int8_units(cpu: distribute.CpuFeatures | None = None) -> bool:
    """True when this CPU has int8 dot products (``avx512_vnni``, ``avx_vnni``,
    ``amx_int8``): where the int8 model measured faster than float32."""
    return bool((distribute.cpu_features() if cpu is None else cpu).int8)


def int8_kept_accuracy(metadata: BundleMetadata) -> bool:
    """True when the bundle carries an int8 model that ``logo-batch quantize`` found
    within :data:`MAX_TOP1_DROP` of its float32 model's validation top-1."""
    return bool(metadata.quantization.get("kept_accuracy"))


def may_use_int8(precision: str, metadata: BundleMetadata) -> bool:
    """True when ``precision`` can resolve to the bundle's int8 model on some machine
    (:func:`resolve_inference`): ``int8``, or ``auto`` with an int8 model that kept its
    accuracy."""
    return precision == INT8 or (precision == AUTO and int8_kept_accuracy(metadata))


def resolve_inference(
    precision: str, metadata: BundleMetadata, *, cpu: distribute.CpuFeatures | None = None
) -> str:
    """What inference runs in: ``int8``, ``mixed_bfloat16`` or ``float32``.

    ``auto``: int8 when the bundle holds an int8 model that kept its accuracy
    (:func:`int8_kept_accuracy`) and the CPU has int8 dot products
    (:func:`has_int8_units`), else float32. ``int8`` needs the bundle's int8 model;
    ``bfloat16`` is Keras's ``mixed_bfloat16``; ``off`` is float32.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == INT8:
        if not metadata.quantization:
            raise ValueError(
                "the bundle has no int8 model: make one with `logo-batch quantize BUNDLE "
                "--data-dir D`"
            )
        return INT8
    if precision == AUTO:
        if int8_kept_accuracy(metadata) and has_int8_units(cpu) and not distribute.has_gpu():
            return INT8
        return distribute.FLOAT32
    return distribute.resolve_precision(precision)


def load_int8_model(bundle_dir: str | os.PathLike, num_threads: int | None = None) -> Int8Model:
    """The bundle's int8 model (local or remote, :func:`~logo_batch.bundle.open_bundle_file`)."""
    with open_bundle_file(bundle_dir, INT8_FILE) as handle:
        return Int8Model(handle.read(), num_threads)


def inference_model(bundle: Bundle, precision: str) -> tuple[Any, str]:
    """The model to run for ``precision`` (:func:`resolve_inference`) and what it
    resolved to: the int8 model, the Keras model in ``mixed_bfloat16``, or the
    bundle's own model (float32)."""
    resolved = resolve_inference(precision, bundle.metadata)
    if resolved == INT8:
        return load_int8_model(bundle.path), resolved
    if resolved == distribute.FLOAT32:
        return bundle.model, resolved
    return distribute.inference_model(bundle.model, resolved), resolved
