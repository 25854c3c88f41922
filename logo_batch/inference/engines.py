"""Which engine runs a bundle's model for ``--precision``, and how it is loaded and called.

Engines: the bundle's Keras model in float32 (the default everywhere), the same model
computing in ``mixed_bfloat16`` (:func:`low_precision_model`), and the bundle's int8
TensorFlow Lite model (:class:`TfliteModel`, made by ``logo-batch quantize``). CPUs with
int8 dot products (AVX-512 VNNI, AVX-VNNI, AMX: most cloud CPU workers today) run the
int8 model several times faster than TensorFlow's float32 graph
(``benchmarks/RESULTS.md``, section 6).

:func:`resolve_inference` picks the engine on the machine that runs it: ``auto`` is int8
when the bundle carries an int8 model that kept the float32 accuracy and this CPU has
int8 dot products, else float32. ``logo-batch predict``, ``evaluate`` and the Beam job
(in each worker) all load it through :func:`inference_model` / :func:`load_engine`, and
all call it through :func:`predict_scores`.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import warnings
import weakref
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from logo_batch import console
from logo_batch.inference.bundle import Bundle, BundleMetadata, open_bundle_file
from logo_batch.inference.cpu import CpuFeatures, cpu_features, has_gpu
from tfds_flickr27.parallel import cpu_count

if TYPE_CHECKING:
    import keras

INT8_FILE = "model.int8.tflite"
# --precision for inference: auto, off (float32), bfloat16, int8.
AUTO, OFF, BFLOAT16, INT8 = "auto", "off", "bfloat16", "int8"
PRECISIONS = (AUTO, OFF, BFLOAT16, INT8)
# Keras dtype policies a model computes in (training picks among them too).
FLOAT32, MIXED_FLOAT16, MIXED_BFLOAT16 = "float32", "mixed_float16", "mixed_bfloat16"
# The int8 model is used by `auto` only when its validation top-1 is at most this far
# below the float32 model's (one example of the 182 validation crops is 0.0055).
MAX_TOP1_DROP = 0.01


class TfliteModel:
    """A TensorFlow Lite model (the bundle's int8 model, or any flatbuffer with a float
    input) called like :func:`predict_scores` calls a model: ``float32 [B, S, S, 3]``
    in, softmax scores ``float32 [B, C]`` out.

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
                model_content=content, num_threads=num_threads or cpu_count()
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
                f"the TensorFlow Lite model takes inputs of shape {self.input_shape[1:]}, "
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


def has_int8_units(cpu: CpuFeatures | None = None) -> bool:
    """True when this CPU has int8 dot products (``avx512_vnni``, ``avx_vnni``,
    ``amx_int8``): where the int8 model measured faster than float32."""
    return bool((cpu_features() if cpu is None else cpu).int8)


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
    precision: str, metadata: BundleMetadata, *, cpu: CpuFeatures | None = None
) -> str:
    """What inference runs in: ``int8``, ``mixed_bfloat16`` or ``float32``.

    ``auto``: int8 when the bundle holds an int8 model that kept its accuracy
    (:func:`int8_kept_accuracy`) and the CPU (``cpu``, default this machine's) has
    int8 dot products (:func:`has_int8_units`) and there is no GPU, else float32.
    ``int8`` needs the bundle's int8 model; ``bfloat16`` is Keras's ``mixed_bfloat16``;
    ``off`` is float32.
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
        if int8_kept_accuracy(metadata) and has_int8_units(cpu) and not has_gpu():
            return INT8
        return FLOAT32
    return MIXED_BFLOAT16 if precision == BFLOAT16 else FLOAT32


def load_int8_model(bundle_dir: str | os.PathLike, num_threads: int | None = None) -> TfliteModel:
    """The bundle's int8 model (local or remote,
    :func:`~logo_batch.inference.bundle.open_bundle_file`)."""
    with open_bundle_file(bundle_dir, INT8_FILE) as handle:
        return TfliteModel(handle.read(), num_threads)


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


def load_engine(resolved: str, bundle_dir: str | os.PathLike, keras_model: Callable[[], Any]):
    """The engine for a resolved precision (:func:`resolve_inference`): the bundle's
    int8 model, or the Keras model ``keras_model()`` gives in ``resolved``'s policy
    (itself for float32)."""
    if resolved == INT8:
        return load_int8_model(bundle_dir)
    return low_precision_model(keras_model(), resolved)


def inference_model(bundle: Bundle, precision: str) -> tuple[Any, str]:
    """The model to run for ``precision`` (:func:`resolve_inference`) and what it
    resolved to: the int8 model, the Keras model in ``mixed_bfloat16``, or the
    bundle's own model (float32)."""
    resolved = resolve_inference(precision, bundle.metadata)
    return load_engine(resolved, bundle.path, lambda: bundle.model), resolved


def with_precision(bundle: Bundle, precision: str) -> tuple[Bundle, str]:
    """The bundle with the model inference runs for ``precision`` on this machine, and
    what that resolved to (:func:`inference_model`; ``off`` is float32 and returns the
    bundle itself)."""
    model, resolved = inference_model(bundle, precision)
    if model is bundle.model:
        return bundle, resolved
    return dataclasses.replace(bundle, model=model), resolved


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def compiled_forward(model: keras.Model) -> Callable[[np.ndarray], object]:
    """The model's forward pass (inference) as one traced TensorFlow graph, made once
    per model: any batch size of ``float32 [B, S, S, 3]`` runs the same graph.

    Calling a Keras model eagerly dispatches every layer from Python, which costs
    more than MobileNetV2's arithmetic on a CPU (``benchmarks/RESULTS.md``, section
    6: the graph gives 2.4x the images per CPU-second). A callable that is not a Keras
    model (the int8 engine, a test's stand-in) is returned as it is.
    """
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
