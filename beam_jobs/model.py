"""The model side of the job: Beam's TensorFlow model handler for a bundle, and its checks."""

from __future__ import annotations

import io
import os
import zipfile

import numpy as np
from apache_beam.io.filesystems import FileSystems
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor

from beam_jobs.errors import ClassifyJobError
from beam_jobs.inputs import is_local, os_reason
from logo_batch.bundle import model_path
from logo_batch.layers import ScalePixels
from logo_batch.predict import predict_scores


def bundle_model_uri(bundle_dir: str) -> str:
    if is_local(bundle_dir):
        return os.path.abspath(model_path(bundle_dir))
    return FileSystems.join(bundle_dir, os.path.basename(model_path(bundle_dir)))


def infer_scores(model, batch, inference_args, model_id=None) -> list[PredictionResult]:
    """RunInference ``inference_fn``: one forward pass over a batch of model inputs.

    :func:`logo_batch.predict.predict_scores`, as ``logo-batch predict`` calls it; the
    results carry the softmax vector only (not the input tensor) to keep them small.
    """
    if inference_args:
        raise ValueError(f"the logo-batch model takes no inference_args: {sorted(inference_args)}")
    scores = predict_scores(model, np.stack(batch))
    return [PredictionResult(None, row, model_id) for row in scores]


def make_model_handler(bundle_dir: str) -> KeyedModelHandler:
    """Beam's TensorFlow model handler for a bundle, keyed by path, batches pre-made.

    ``custom_objects`` holds the :class:`~logo_batch.layers.ScalePixels` class itself:
    unpickling the handler in a worker imports :mod:`logo_batch.layers` (which
    registers the layer) before Keras loads the model, in every worker process.
    """
    handler = TFModelHandlerTensor(
        bundle_model_uri(bundle_dir),
        load_model_args={
            "compile": False,
            "safe_mode": True,
            "custom_objects": {"logo_batch>ScalePixels": ScalePixels},
        },
        inference_fn=infer_scores,
    )
    return KeyedModelHandler(handler).with_no_batching()


def check_model_file(bundle_dir: str) -> None:
    """Fails before any work unless the bundle's ``model.keras`` is a complete archive.

    A ``.keras`` file is a zip archive holding ``config.json`` (and the weights); a
    truncated or overwritten file fails its central directory or CRC checks.
    """
    path = bundle_model_uri(bundle_dir)
    try:
        if is_local(path):
            if not os.path.lexists(path):
                raise ClassifyJobError(
                    f"{path}: no such file; {bundle_dir} is not a complete model bundle"
                )
            archive = zipfile.ZipFile(path)
        else:
            with FileSystems.open(path) as handle:
                archive = zipfile.ZipFile(io.BytesIO(handle.read()))
        with archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as error:
        reason = os_reason(error) if isinstance(error, OSError) else str(error)
        raise ClassifyJobError(
            f"{path}: the model file is unreadable or corrupt ({reason}); "
            f"save the bundle again (logo-batch train writes it)"
        ) from error
    if damaged is not None or "config.json" not in names:
        what = f"member {damaged} fails its CRC" if damaged else "no config.json"
        raise ClassifyJobError(f"{path}: the model file is corrupt ({what})")
