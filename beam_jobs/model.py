"""The model side of the job: Beam's TensorFlow model handler for a bundle, and its checks."""

from __future__ import annotations

import functools
import logging
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor

from beam_jobs.errors import ClassifyJobError
from beam_jobs.inputs import is_local, local_path, os_reason
from logo_batch.inference import engines
from logo_batch.inference.bundle import (
    MODEL_FILE,
    BundleMetadata,
    bundle_file,
    open_bundle_file,
    read_metadata,
)
from logo_batch.inference.cpu import CpuFeatures
from logo_batch.inference.engines import predict_scores
from logo_batch.inference.layers import ScalePixels
from logo_batch.inference.whole_photo import DEFAULT_BATCH_SIZE, WindowStack, score_window_stacks


def bundle_model_uri(bundle_dir: str) -> str:
    """The bundle's ``model.keras`` (:func:`logo_batch.inference.bundle.bundle_file`) as the model
    handler loads it in every worker: a local bundle by its absolute path."""
    return bundle_file(local_path(bundle_dir) if is_local(bundle_dir) else bundle_dir, MODEL_FILE)


@dataclass(frozen=True)
class FailedInput:
    """An example that is not a model input: a file that could not be read or decoded.

    It goes through RunInference with the files of its batch (not around it), so the
    job is one chain of steps: a runner that keeps each step's output for a whole
    partition (Dask) never holds more than the batch it is on.
    """

    reason: str


def infer_scores(
    model,
    batch,
    inference_args,
    model_id=None,
    *,
    class_names: Sequence[str] | None = None,
    background_class: str | None = None,
    window_batch_size: int = DEFAULT_BATCH_SIZE,
) -> list[PredictionResult]:
    """RunInference ``inference_fn`` over one batch of examples, of either kind:

    - model inputs ``[S, S, 3]`` (single mode): one forward pass,
      :func:`logo_batch.inference.engines.predict_scores` as ``logo-batch predict`` calls it; the
      inference is the softmax vector (not the input tensor, to keep results small);
    - :class:`~logo_batch.inference.whole_photo.WindowStack` (whole mode): the windows of all the
      batch's photos through :func:`~logo_batch.inference.whole_photo.score_window_stacks` (calls
      of at most ``window_batch_size`` windows), as ``logo-batch predict --mode whole``;
      the inference is the photo's :class:`~logo_batch.inference.whole_photo.PhotoScores`.

    A :class:`FailedInput` example is not scored: its result's ``example`` is the
    failure and its ``inference`` None.
    """
    if inference_args:
        raise ValueError(f"the logo-batch model takes no inference_args: {sorted(inference_args)}")
    inputs = [example for example in batch if not isinstance(example, FailedInput)]
    if not inputs:
        inferences = []
    elif isinstance(inputs[0], WindowStack):
        if class_names is None:
            raise ValueError("window stacks need the class names (make_model_handler)")
        inferences = score_window_stacks(
            model, inputs, class_names, background_class, batch_size=window_batch_size
        )
    else:
        inferences = list(predict_scores(model, np.stack(inputs)))
    scored = iter(inferences)
    return [
        PredictionResult(example, None, model_id)
        if isinstance(example, FailedInput)
        else PredictionResult(None, next(scored), model_id)
        for example in batch
    ]


class BundleModelHandler(TFModelHandlerTensor):
    """Beam's TensorFlow model handler, loading the model a precision resolves to in
    the worker that runs it (:func:`logo_batch.inference.engines.resolve_inference`): the bundle's
    int8 model where ``auto`` finds it kept its accuracy and the worker's CPU has int8
    dot products, the Keras model (in bfloat16 when asked) otherwise."""

    def __init__(self, bundle_dir: str, metadata: BundleMetadata, precision: str, **kwargs):
        super().__init__(bundle_model_uri(bundle_dir), **kwargs)
        # Fails here, before any work, on a precision the bundle cannot give.
        engines.resolve_inference(precision, metadata, cpu=CpuFeatures(frozenset(), False))
        self._bundle_dir = bundle_dir
        self._metadata = metadata
        self._precision = precision

    def load_model(self):
        resolved = engines.resolve_inference(self._precision, self._metadata)
        logging.info("logo-batch: the model runs in %s in this worker", resolved)
        return engines.load_engine(resolved, self._bundle_dir, super().load_model)


def make_model_handler(
    bundle_dir: str,
    *,
    class_names: Sequence[str] | None = None,
    background_class: str | None = None,
    window_batch_size: int = DEFAULT_BATCH_SIZE,
    precision: str = engines.OFF,
) -> KeyedModelHandler:
    """Beam's TensorFlow model handler for a bundle, keyed by path, batches pre-made.

    ``class_names`` and ``background_class`` are needed for whole-photo examples
    (:class:`~logo_batch.inference.whole_photo.WindowStack`), which are scored in model calls of
    at most ``window_batch_size`` windows. ``precision`` (``--precision``) is resolved in
    each worker (:class:`BundleModelHandler`); the bundle's metadata is read here.

    ``custom_objects`` holds the :class:`~logo_batch.inference.layers.ScalePixels` class itself:
    unpickling the handler in a worker imports :mod:`logo_batch.inference.layers` (which
    registers the layer) before Keras loads the model, in every worker process.
    """
    inference_fn = infer_scores
    if class_names is not None:
        inference_fn = functools.partial(
            infer_scores,
            class_names=list(class_names),
            background_class=background_class,
            window_batch_size=window_batch_size,
        )
    handler = BundleModelHandler(
        bundle_dir,
        read_metadata(bundle_dir),
        precision,
        load_model_args={
            "compile": False,
            "safe_mode": True,
            "custom_objects": {"logo_batch>ScalePixels": ScalePixels},
        },
        inference_fn=inference_fn,
    )
    return KeyedModelHandler(handler).with_no_batching()


def check_model_file(bundle_dir: str) -> None:
    """Fails before any work unless the bundle's ``model.keras`` is a complete archive.

    A ``.keras`` file is a zip archive holding ``config.json`` (and the weights); a
    truncated or overwritten file fails its central directory or CRC checks. Read
    through :func:`logo_batch.inference.bundle.open_bundle_file`, local or remote alike.
    """
    path = bundle_model_uri(bundle_dir)
    try:
        with open_bundle_file(bundle_dir, MODEL_FILE) as handle, zipfile.ZipFile(handle) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except FileNotFoundError as error:
        raise ClassifyJobError(
            f"{path}: no such file; {bundle_dir} is not a complete model bundle"
        ) from error
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as error:
        reason = os_reason(error) if isinstance(error, OSError) else str(error)
        raise ClassifyJobError(
            f"{path}: the model file is unreadable or corrupt ({reason}); "
            f"save the bundle again (logo-batch train writes it)"
        ) from error
    if damaged is not None or "config.json" not in names:
        what = f"member {damaged} fails its CRC" if damaged else "no config.json"
        raise ClassifyJobError(f"{path}: the model file is corrupt ({what})")
