"""Which engine runs a bundle's model, chosen for ``--precision`` on the machine that runs
it, and how it is loaded and called.

Engines (:data:`ENGINES`), each a callable ``float32 [B, S, S, 3]`` -> softmax ``[B, C]``:

- ``tflite-float32``: the bundle's ``model.tflite`` (written by ``train``'s export, or
  ``logo-batch quantize`` for an older bundle) on TensorFlow Lite, whose XNNPACK kernels
  ran MobileNetV2 at about 3x the images per CPU-second of TensorFlow's graph on the CPUs
  measured here (``benchmarks/RESULTS.md``, the engines table). Used only where the
  export checked that it gives the Keras model's scores within :data:`FLOAT32_TOLERANCE`
  and the same labels (``engines`` in ``metadata.json``).
- ``tflite-int8``: the bundle's int8 model (``logo-batch quantize``), where it kept its
  validation accuracy and the CPU has int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX).
- ``tf-float32``: the Keras model as one traced TensorFlow graph (GPUs, and bundles
  without ``model.tflite``); ``tf-bfloat16``: the same in ``mixed_bfloat16``.

:func:`resolve_engine` picks one: ``auto`` takes the int8 model where it pays and kept
its accuracy, else the fastest float32 engine (the TensorFlow graph on a GPU); ``off``
the fastest float32 engine; ``bfloat16`` and ``int8`` as named. ``logo-batch predict``,
``evaluate`` and every Beam worker load it with :func:`load_engine` (the Keras model is
loaded only for a ``tf-`` engine) and call it through :func:`predict_scores`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
import weakref
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from logo_batch import console
from logo_batch.inference.bundle import (
    Bundle,
    BundleMetadata,
    bundle_file,
    load_keras_model,
    open_bundle_file,
    read_metadata,
)
from logo_batch.inference.cpu import CpuFeatures, cpu_count, cpu_features, has_gpu

if TYPE_CHECKING:
    import keras

TFLITE_FILE = "model.tflite"  # float32 TensorFlow Lite model
# Images per interpreter call, whatever batch a caller passes: one 224 px MobileNetV2
# image's float32 activations fit a core's L2 cache, a batch's do not. One at a time ran
# 1.7x the images per CPU-second of batches of 32 on the Xeon measured (2026-12-08),
# with bit-identical scores; the int8 model the same either way (docs/performance.md).
INVOKE_BATCH = 1
INT8_FILE = "model.int8.tflite"
# --precision for inference: auto, off (float32), bfloat16, int8.
AUTO, OFF, BFLOAT16, INT8 = "auto", "off", "bfloat16", "int8"
PRECISIONS = (AUTO, OFF, BFLOAT16, INT8)
# Keras dtype policies a model computes in (training picks among them too).
FLOAT32, MIXED_FLOAT16, MIXED_BFLOAT16 = "float32", "mixed_float16", "mixed_bfloat16"
# The engines, by the names runs and manifests record.
TF_FLOAT32, TF_BFLOAT16 = "tf-float32", "tf-bfloat16"
TFLITE_FLOAT32, TFLITE_INT8 = "tflite-float32", "tflite-int8"
ENGINES = (TFLITE_FLOAT32, TFLITE_INT8, TF_FLOAT32, TF_BFLOAT16)
# What each engine computes in (evaluate's `precision`, predict's note).
ENGINE_PRECISION = {
    TF_FLOAT32: FLOAT32,
    TFLITE_FLOAT32: FLOAT32,
    TF_BFLOAT16: MIXED_BFLOAT16,
    TFLITE_INT8: INT8,
}
# A float32 engine may replace the Keras model only when every softmax score it gives
# is within this of the Keras model's (and every label is the same) on the export's check.
FLOAT32_TOLERANCE = 1e-4
# The int8 model is used by `auto` only when its validation top-1 is at most this far
# below the float32 model's (one example of the 182 validation crops is 0.0055).
MAX_TOP1_DROP = 0.01


def needs_tensorflow(engine: str) -> bool:
    """Whether ``engine`` runs on TensorFlow (the ``tf-`` engines), not LiteRT."""
    return engine in (TF_FLOAT32, TF_BFLOAT16)


def engine_threads() -> int:
    """Threads a TensorFlow Lite engine runs on: ``TF_NUM_INTRAOP_THREADS`` where the
    process was given a share of the cores (the Beam job's local workers), else every
    core this process may use."""
    given = os.environ.get("TF_NUM_INTRAOP_THREADS", "")
    return int(given) if given.isdigit() and int(given) > 0 else cpu_count()


def interpreter_class() -> type:
    """LiteRT's interpreter (``ai_edge_litert``: no TensorFlow import, the same kernels
    and XNNPACK), else TensorFlow's deprecated ``tf.lite.Interpreter``."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf

        return tf.lite.Interpreter
    return Interpreter


class TfliteModel:
    """A TensorFlow Lite model (the bundle's int8 model, or any flatbuffer with a float
    input) called like :func:`predict_scores` calls a model: ``float32 [B, S, S, 3]``
    in, softmax scores ``float32 [B, C]`` out.

    One interpreter on ``num_threads`` threads (default: this machine's cores), invoked
    on ``invoke_batch`` images at a time (:data:`INVOKE_BATCH`) whatever the batch
    given; calls are serialized (an interpreter is not thread-safe, and Beam may share
    one model between threads).
    """

    def __init__(
        self, content: bytes, num_threads: int | None = None, invoke_batch: int = INVOKE_BATCH
    ):
        if invoke_batch < 1:
            raise ValueError(f"invoke_batch must be at least 1, not {invoke_batch}")
        self.invoke_batch = invoke_batch
        # Quiet unless asked: the deprecation notice, and XNNPACK's "created delegate" line.
        with warnings.catch_warnings(), console.native_stderr_captured(not console.is_verbose()):
            warnings.simplefilter("ignore")
            self._interpreter = interpreter_class()(
                model_content=content, num_threads=num_threads or engine_threads()
            )
            self._interpreter.allocate_tensors()
        self._input = self._interpreter.get_input_details()[0]
        self._output = self._interpreter.get_output_details()[0]["index"]
        self.input_shape = (None, *self._input["shape"][1:])
        self.output_shape = (None, *self._interpreter.get_output_details()[0]["shape"][1:])
        self._batch = -1
        self._lock = threading.Lock()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        images = np.ascontiguousarray(images, dtype=np.float32)
        if images.shape[1:] != tuple(self.input_shape[1:]):
            raise ValueError(
                f"the TensorFlow Lite model takes inputs of shape {self.input_shape[1:]}, "
                f"not {images.shape[1:]}"
            )
        step = self.invoke_batch
        with self._lock:
            scores = [self._invoke(images[i : i + step]) for i in range(0, len(images), step)]
        return (
            np.concatenate(scores) if scores else np.zeros((0, *self.output_shape[1:]), np.float32)
        )

    def _invoke(self, images: np.ndarray) -> np.ndarray:
        if len(images) != self._batch:  # once, or for a last, shorter chunk
            self._interpreter.resize_tensor_input(self._input["index"], list(images.shape))
            self._interpreter.allocate_tensors()
            self._batch = len(images)
        self._interpreter.set_tensor(self._input["index"], images)
        self._interpreter.invoke()
        return self._interpreter.get_tensor(self._output).copy()


def has_int8_units(cpu: CpuFeatures | None = None) -> bool:
    """True when this CPU has int8 dot products (``avx512_vnni``, ``avx_vnni``,
    ``amx_int8``): where the int8 model measured faster than float32."""
    return bool((cpu_features() if cpu is None else cpu).int8)


def int8_kept_accuracy(metadata: BundleMetadata) -> bool:
    """True when the bundle carries an int8 model that ``logo-batch quantize`` found
    within :data:`MAX_TOP1_DROP` of its float32 model's validation top-1."""
    return bool(metadata.quantization.get("kept_accuracy"))


def tflite_float32_checked(metadata: BundleMetadata) -> bool:
    """True when the bundle carries ``model.tflite`` and its export found it gives the
    Keras model's scores within :data:`FLOAT32_TOLERANCE` (``engines`` in the metadata)."""
    return bool(metadata.engines.get(TFLITE_FLOAT32, {}).get("kept_scores"))


def may_use_int8(precision: str, metadata: BundleMetadata) -> bool:
    """True when ``precision`` can resolve to the bundle's int8 model on some machine
    (:func:`resolve_engine`): ``int8``, or ``auto`` with an int8 model that kept its
    accuracy."""
    return precision == INT8 or (precision == AUTO and int8_kept_accuracy(metadata))


def may_use_tflite(precision: str, metadata: BundleMetadata) -> bool:
    """True when ``precision`` can resolve to the bundle's ``model.tflite`` on some
    machine (:func:`resolve_engine`): ``auto`` or ``off`` with a checked one."""
    return precision in (AUTO, OFF) and tflite_float32_checked(metadata)


def resolve_engine(
    precision: str,
    metadata: BundleMetadata,
    *,
    cpu: CpuFeatures | None = None,
    gpu: bool | None = None,
) -> str:
    """The engine (one of :data:`ENGINES`) that runs ``precision`` on this machine
    (``cpu``, ``gpu``: its CPU features and whether TensorFlow sees a GPU, by default
    read here).

    ``auto``: the int8 model where it kept its accuracy (:func:`int8_kept_accuracy`) and
    the CPU has int8 dot products (:func:`has_int8_units`), on a machine without a GPU;
    else as ``off``. ``off``: float32 on ``tflite-float32`` where the bundle's export
    checked it (:func:`tflite_float32_checked`) and there is no GPU, else on the
    TensorFlow graph. ``int8`` needs the bundle's int8 model; ``bfloat16`` is the
    TensorFlow graph in ``mixed_bfloat16``.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == INT8:
        if not metadata.quantization:
            raise ValueError(
                "the bundle has no int8 model: make one with `logo-batch quantize BUNDLE "
                "--data-dir D`"
            )
        return TFLITE_INT8
    if precision == BFLOAT16:
        return TF_BFLOAT16
    gpu = has_gpu() if gpu is None else gpu
    if gpu:
        return TF_FLOAT32
    if precision == AUTO and int8_kept_accuracy(metadata) and has_int8_units(cpu):
        return TFLITE_INT8
    return TFLITE_FLOAT32 if tflite_float32_checked(metadata) else TF_FLOAT32


def load_tflite(
    bundle_dir: str | os.PathLike, name: str, num_threads: int | None = None
) -> TfliteModel:
    """A TensorFlow Lite file of the bundle (local or remote,
    :func:`~logo_batch.inference.bundle.open_bundle_file`) as a :class:`TfliteModel`."""
    with open_bundle_file(bundle_dir, name) as handle:
        content = handle.read()
    try:
        return TfliteModel(content, num_threads)
    except (ValueError, RuntimeError) as error:
        raise ValueError(
            f"{bundle_file(bundle_dir, name)}: not a TensorFlow Lite model this "
            f"engine can run ({str(error).splitlines()[0] if str(error) else error})"
        ) from error


def low_precision_model(model: keras.Model, policy: str) -> keras.Model:
    """``model`` computing in ``policy``: itself for ``float32``, else a copy with the
    same weights whose layers compute in the policy's dtype, except the model's
    output layers (the softmax stays float32, as in training).

    Bundles are saved in float32 (loadable anywhere); this is how inference uses a
    CPU's bfloat16 units or a GPU's float16 ones with them.
    """
    import keras

    if policy == FLOAT32:
        return model
    outputs = {id(tensor._keras_history.operation) for tensor in model.outputs}

    def clone(layer: keras.layers.Layer) -> keras.layers.Layer:
        config = layer.get_config()
        if id(layer) not in outputs:
            config["dtype"] = policy
        return layer.__class__.from_config(config)

    copy = keras.models.clone_model(model, clone_function=clone, recursive=True)
    copy.set_weights(model.get_weights())
    return copy


def load_engine(
    engine: str,
    bundle_dir: str | os.PathLike,
    keras_model: Callable[[], Any],
    num_threads: int | None = None,
):
    """The model ``engine`` runs (:func:`resolve_engine`): a bundle's TensorFlow Lite
    file, or the Keras model ``keras_model()`` gives (loaded only for a ``tf-``
    engine), in bfloat16 for ``tf-bfloat16``."""
    if engine == TFLITE_INT8:
        return load_tflite(bundle_dir, INT8_FILE, num_threads)
    if engine == TFLITE_FLOAT32:
        return load_tflite(bundle_dir, TFLITE_FILE, num_threads)
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {ENGINES}, not {engine!r}")
    return low_precision_model(keras_model(), ENGINE_PRECISION[engine])


def open_for_inference(
    bundle_dir: str | os.PathLike, precision: str, num_threads: int | None = None
) -> tuple[Bundle, str]:
    """The bundle ready to classify with ``precision`` on this machine, and the engine
    it runs (:func:`resolve_engine`): its ``model`` is that engine (the Keras model is
    not loaded for a TensorFlow Lite engine)."""
    metadata = read_metadata(bundle_dir)
    engine = resolve_engine(precision, metadata)
    model = load_engine(engine, bundle_dir, lambda: load_keras_model(bundle_dir), num_threads)
    location = os.fspath(bundle_dir)
    path: Path | str = location if "://" in location else Path(location)
    return Bundle(path, model, metadata), engine


def with_precision(bundle: Bundle, precision: str) -> tuple[Bundle, str]:
    """A loaded bundle with the engine ``precision`` resolves to on this machine
    (:func:`resolve_engine`), and that engine's name (the bundle itself for the
    TensorFlow graph in float32)."""
    engine = resolve_engine(precision, bundle.metadata)
    model = load_engine(engine, bundle.path, lambda: bundle.model)
    if model is bundle.model:
        return bundle, engine
    return dataclasses.replace(bundle, model=model), engine


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_forward(model: keras.Model) -> Callable[[np.ndarray], object]:
    """The model's forward pass (inference) as one traced TensorFlow graph, made once
    per model: any batch size of ``float32 [B, S, S, 3]`` runs the same graph.

    Calling a Keras model eagerly dispatches every layer from Python, which costs
    more than MobileNetV2's arithmetic on a CPU (``benchmarks/RESULTS.md``, section
    6: the graph gives 2.4x the images per CPU-second). A callable that is not a Keras
    model (the int8 engine, a test's stand-in) is returned as it is.
    """
    if isinstance(model, TfliteModel):  # before importing Keras (and so TensorFlow)
        return model
    import keras
    import tensorflow as tf

    if not isinstance(model, keras.Model):
        return model
    forward = _COMPILED.get(model)
    if forward is None:
        spec = tf.TensorSpec([None, *model.input_shape[1:]], tf.float32)
        owner = weakref.ref(model)  # the cache must not keep the model alive
        forward = tf.function(
            lambda images: owner()(images, training=False), input_signature=[spec]
        )
        _COMPILED[model] = forward
    return forward


def predict_scores(model: keras.Model, images: np.ndarray) -> np.ndarray:
    """Softmax scores of a batch of model inputs ``float32 [B, S, S, 3]`` (one call
    of :func:`compiled_forward`: what ``logo-batch predict``, whole-photo windows and
    the Beam job's model handler all run)."""
    images = np.asarray(images, dtype=np.float32)
    return np.asarray(compiled_forward(model)(images), dtype=np.float32)
