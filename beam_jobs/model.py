"""The model side of the job: Beam's TensorFlow model handler for a bundle, and its checks."""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from apache_beam.metrics.metric import Metrics
from apache_beam.ml.inference.base import KeyedModelHandler, ModelHandler, PredictionResult

from beam_jobs.errors import ClassifyJobError
from beam_jobs.inputs import is_local, local_path
from beam_jobs.summary import METRICS_NAMESPACE
from logo_batch import console
from logo_batch.inference import engines
from logo_batch.inference.bundle import MODEL_FILE, BundleMetadata, bundle_file, read_metadata
from logo_batch.inference.checks import check_for_workers, load_checked_engine
from logo_batch.inference.cpu import CpuFeatures
from logo_batch.inference.engines import predict_scores
from logo_batch.inference.whole_photo import (
    DEFAULT_BATCH_SIZE,
    Cascade,
    WindowStack,
    score_window_stacks,
)


def worker_bundle_dir(bundle_dir: str) -> str:
    """The bundle as every worker opens it: a local bundle by its absolute path."""
    return local_path(bundle_dir) if is_local(bundle_dir) else bundle_dir


def bundle_model_uri(bundle_dir: str) -> str:
    """The bundle's ``model.keras`` (:func:`logo_batch.inference.bundle.bundle_file`) as
    the workers load it."""
    return bundle_file(worker_bundle_dir(bundle_dir), MODEL_FILE)


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
    cascade: Cascade | None = None,
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
            model,
            inputs,
            class_names,
            background_class,
            batch_size=window_batch_size,
            cascade=cascade,
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


ENGINE_COUNTER = "files_on_{}"
"""Counter (namespace ``logo_batch``) of the files each engine classified: the run
summary names the engines from them (:func:`engines_used`)."""


def engines_used(counters: dict[str, int]) -> dict[str, int]:
    """``{engine: files}`` from the job's counters (empty where the runner reports none)."""
    found = {}
    for engine in engines.ENGINES:
        count = counters.get(ENGINE_COUNTER.format(engine.replace("-", "_")), 0)
        if count:
            found[engine] = count
    return found


class BundleModelHandler(ModelHandler):
    """RunInference's model handler for a bundle: in each worker it loads the engine
    ``--precision`` resolves to on that worker's machine
    (:func:`logo_batch.inference.engines.resolve_engine`: the bundle's TensorFlow Lite
    model, float32 or int8, or its Keras model as a TensorFlow graph), and counts the
    files each engine classified (:data:`ENGINE_COUNTER`).

    Beam's own TensorFlow handler loads only a Keras or SavedModel model (and imports
    TensorFlow and TensorFlow Hub wherever the pipeline is built): this one loads what
    the engine needs, in the worker, and nothing in the driver.
    """

    def __init__(self, bundle_dir: str, metadata: BundleMetadata, precision: str, inference_fn):
        super().__init__()
        # Fails here, before any work, on a precision the bundle cannot give.
        engines.resolve_engine(precision, metadata, cpu=CpuFeatures(frozenset(), False), gpu=False)
        self._bundle_dir = worker_bundle_dir(bundle_dir)
        self._metadata = metadata
        self._precision = precision
        self._inference_fn = inference_fn
        self._engine: str | None = None

    def load_model(self):
        self._engine = engines.resolve_engine(self._precision, self._metadata)
        logging.info("logo-batch: this worker runs the model on %s", self._engine)
        return load_checked_engine(self._bundle_dir, self._metadata, self._engine)

    def run_inference(self, batch, model, inference_args=None):
        results = self._inference_fn(model, batch, inference_args)
        name = ENGINE_COUNTER.format((self._engine or "unknown").replace("-", "_"))
        scored = [r.inference for r in results if r.inference is not None]
        Metrics.counter(METRICS_NAMESPACE, name).inc(len(scored))
        Metrics.counter(METRICS_NAMESPACE, "model_inputs").inc(
            sum(getattr(inference, "windows_scored", 1) for inference in scored)
        )
        return results

    def get_num_bytes(self, batch) -> int:
        return sum(getattr(example, "nbytes", 0) or example.__sizeof__() for example in batch)


def make_model_handler(
    bundle_dir: str,
    *,
    class_names: Sequence[str] | None = None,
    background_class: str | None = None,
    window_batch_size: int = DEFAULT_BATCH_SIZE,
    precision: str = engines.OFF,
) -> KeyedModelHandler:
    """The model handler for a bundle (:class:`BundleModelHandler`), keyed by path,
    batches pre-made.

    ``class_names`` and ``background_class`` are needed for whole-photo examples
    (:class:`~logo_batch.inference.whole_photo.WindowStack`), which are scored in model
    calls of at most ``window_batch_size`` windows. ``precision`` (``--precision``) is
    resolved in each worker; the bundle's metadata is read here.
    """
    metadata = read_metadata(bundle_dir)
    inference_fn = infer_scores
    if class_names is not None:
        inference_fn = functools.partial(
            infer_scores,
            class_names=list(class_names),
            background_class=background_class,
            window_batch_size=window_batch_size,
            cascade=Cascade.of(metadata),
        )
    handler = BundleModelHandler(bundle_dir, metadata, precision, inference_fn)
    return KeyedModelHandler(handler).with_no_batching()


def check_bundle(bundle_dir: str, precision: str) -> BundleMetadata:
    """The bundle checked in the driver, before any worker starts
    (:func:`logo_batch.inference.checks.check_for_workers`: the metadata, the model
    files ``precision`` may load, the class names against the model's outputs);
    returns its metadata. Raises :class:`ClassifyJobError` with one line naming the
    file and the reason."""
    with console.native_stderr_captured(not console.is_verbose()):  # TensorFlow's GPU look-up
        try:
            return check_for_workers(bundle_dir, precision)
        except ValueError as error:  # BundleError, or a precision the bundle cannot give
            problem = error
    raise ClassifyJobError(str(problem)) from problem
