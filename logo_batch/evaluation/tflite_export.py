"""The bundle's float32 TensorFlow Lite engine (``model.tflite``): converted from the
Keras model and checked against it before a bundle may carry it.

``train``'s export (and ``logo-batch quantize``, for a bundle made before) converts the
model (:func:`convert_float32`), runs both on real inputs of the run and keeps the file
only when every softmax score is within
:data:`~logo_batch.inference.engines.FLOAT32_TOLERANCE` of the Keras model's and every
label is the same (:func:`float32_engine`). What the check measured goes into the
bundle's metadata (``engines``), which is what lets ``--precision auto`` run it.
"""

from __future__ import annotations

import contextlib
import io
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from logo_batch import console
from logo_batch.inference import engines

if TYPE_CHECKING:
    import keras

CHECK_INPUTS = 64  # model inputs the float32 engine is checked on


def convert_float32(model: keras.Model) -> bytes:
    """``model`` as a float32 TensorFlow Lite flatbuffer (built-in ops only)."""
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    with (
        contextlib.redirect_stdout(io.StringIO()),
        warnings.catch_warnings(),
        console.native_stderr_captured(not console.is_verbose()),
    ):
        warnings.simplefilter("ignore")
        return converter.convert()


def compare_engine(model: keras.Model, engine, inputs: np.ndarray) -> dict[str, Any]:
    """How ``engine`` (a callable like :func:`~logo_batch.inference.engines.predict_scores`
    takes) scores ``inputs`` (``float32 [N, S, S, 3]``) against the Keras model: the
    largest absolute score difference and the share of equal labels."""
    expected = engines.predict_scores(model, inputs)
    got = engines.predict_scores(engine, inputs)
    return {
        "checked_inputs": int(len(inputs)),
        "max_score_difference": float(np.max(np.abs(got - expected))) if len(inputs) else 0.0,
        "label_agreement": float(np.mean(got.argmax(1) == expected.argmax(1)))
        if len(inputs)
        else 1.0,
    }


def float32_engine(model: keras.Model, inputs: np.ndarray) -> tuple[bytes, dict[str, Any]]:
    """``model.tflite``'s bytes and the figures of its check on ``inputs``
    (``kept_scores``: within the tolerance, same labels; only then may the bundle run it)."""
    content = convert_float32(model)
    figures = compare_engine(model, engines.TfliteModel(content), inputs)
    figures["tolerance"] = engines.FLOAT32_TOLERANCE
    figures["file"] = engines.TFLITE_FILE
    figures["kept_scores"] = bool(
        figures["checked_inputs"]
        and figures["max_score_difference"] <= engines.FLOAT32_TOLERANCE
        and figures["label_agreement"] == 1.0
    )
    return content, figures
