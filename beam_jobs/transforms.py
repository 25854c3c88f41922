"""Model inputs to CSV rows: the job's last PTransforms (each usable on its own).

(beam_jobs.decoding) -> ClassifyBatches -> FormatRows

Each file's :class:`~beam_jobs.file_facts.FileEntry` is the key of its model input, so
a row gets its file's size and modification time where it is made (no join by path).
"""

from __future__ import annotations

from collections.abc import Sequence

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.ml.inference.base import RunInference

from beam_jobs.batch_coder import ExampleBatch
from beam_jobs.file_facts import FileEntry, with_facts
from beam_jobs.model import FailedInput, make_model_handler
from beam_jobs.summary import METRICS_NAMESPACE
from logo_batch.inference.predict import (
    SINGLE,
    WHOLE,
    Prediction,
    error_prediction,
    photo_to_prediction,
    scores_to_prediction,
)


def check_mode(mode: str) -> str:
    """A resolved mode (``whole`` or ``single``: ``auto`` is resolved by the job)."""
    if mode not in (WHOLE, SINGLE):
        raise ValueError(f"mode must be {WHOLE!r} or {SINGLE!r} here, not {mode!r}")
    return mode


class ClassifyBatches(beam.PTransform):
    """Decoded batches to one ``(FileEntry, Prediction)`` per file, through ``RunInference``.

    In whole mode the model handler scores the window stacks of a batch in model calls
    of at most ``batch_size`` windows and the rows are built by
    :func:`~logo_batch.inference.predict.photo_to_prediction`, as ``logo-batch predict`` does.
    The files of a batch that failed to decode go through ``RunInference`` with it, as
    :class:`~beam_jobs.model.FailedInput` examples (not scored): one chain of steps, no
    branch to join, so no runner holds more than a batch of decoded images at a time.
    ``precision``: what the model computes in, resolved in each worker
    (:class:`~beam_jobs.model.BundleModelHandler`).
    """

    def __init__(
        self,
        bundle_dir: str,
        class_names: Sequence[str],
        *,
        top_k: int = 5,
        min_score: float | None = None,
        mode: str = SINGLE,
        background_class: str | None = None,
        batch_size: int = 32,
        precision: str = "off",
    ):
        super().__init__()
        self._precision = precision
        self._bundle_dir = bundle_dir
        self._class_names = list(class_names)
        self._top_k = top_k
        self._min_score = min_score
        self._mode = check_mode(mode)
        self._background_class = background_class
        self._batch_size = batch_size

    def expand(self, decoded):
        class_names, top_k, min_score = self._class_names, self._top_k, self._min_score
        mode, background_class = self._mode, self._background_class

        def to_prediction(keyed_result) -> tuple[FileEntry, Prediction]:
            entry, result = keyed_result
            return entry, prediction_of(entry.path, result)

        def prediction_of(path: str, result) -> Prediction:
            if isinstance(result.example, FailedInput):
                return error_prediction(path, result.example.reason, mode)
            if mode == WHOLE:
                return photo_to_prediction(
                    path,
                    result.inference,
                    class_names,
                    background_class,
                    top_k=top_k,
                    min_score=min_score,
                )
            return scores_to_prediction(
                path, result.inference, class_names, top_k=top_k, min_score=min_score
            )

        handler = make_model_handler(
            self._bundle_dir,
            class_names=class_names,
            background_class=background_class,
            window_batch_size=self._batch_size,
            precision=self._precision,
        )
        return (
            decoded
            | "ModelExamples" >> beam.Map(model_examples).with_output_types(ExampleBatch)
            | "SkipEmpty" >> beam.Filter(bool).with_output_types(ExampleBatch)
            | "RunInference" >> RunInference(handler)
            | "ToPrediction" >> beam.Map(to_prediction)
        )


def model_examples(batch) -> ExampleBatch:
    """A decoded batch as RunInference's examples keyed by :class:`FileEntry`: each file's
    model input, or a :class:`~beam_jobs.model.FailedInput` for a file that failed to
    decode."""
    failed = [(entry, FailedInput(reason)) for entry, reason in batch.errors]
    return ExampleBatch([*batch.inputs, *failed])


class _ToRowFn(beam.DoFn):
    def __init__(self, fingerprint: str):
        self._fingerprint = fingerprint
        self._classified = Metrics.counter(METRICS_NAMESPACE, "images_classified")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed")

    def process(self, keyed: tuple[FileEntry, Prediction]):
        entry, prediction = keyed
        (self._failed if prediction.error else self._classified).inc()
        yield with_facts(prediction.to_row(), entry, self._fingerprint)


class FormatRows(beam.PTransform):
    """``(FileEntry, Prediction)`` pairs to CSV rows (dicts keyed by
    :data:`~logo_batch.result_csv.ROW_COLUMNS`): the prediction's columns, then the
    entry's size and modification time and ``fingerprint`` (:mod:`beam_jobs.fingerprint`)."""

    def __init__(self, fingerprint: str = ""):
        super().__init__()
        self._fingerprint = fingerprint

    def expand(self, predictions):
        return predictions | "ToRow" >> beam.ParDo(_ToRowFn(self._fingerprint))
