"""Classify image folders in bulk with Apache Beam: one CSV row per image file.

    python -m beam_jobs.classify_images --input DIR_OR_GLOB --model BUNDLE \\
        --output results.csv [--num_shards N] [--top_k K] [--min_score S] \\
        [--max_error_fraction F] [--batch_size B] [Beam pipeline options...]

The pipeline, as named composable PTransforms (the layout of Beam's inference
examples)::

    MatchImageFiles      fileio.MatchFiles, keep image extensions  -> paths
    CountMatchedFiles    Count.Globally                            -> N
    GroupIntoBatches     key = crc32(path) % ceil(N / B), GroupByKey,
                         oversize groups split                     -> tuples of paths
    DecodeImageBatches   read + preprocess_image_file per file     -> DecodedBatch
    ClassifyBatches      RunInference(KeyedModelHandler(TFModelHandlerTensor(
                         model.keras)).with_no_batching()), keyed by path;
                         decode errors become error predictions    -> Prediction
    FormatRows           Prediction.to_row(), metrics              -> CSV rows
    WriteCsvShards       shard key, GroupByKey, one sorted CSV per
                         shard in a temporary folder               -> ShardWritten
    WriteManifest        matched count + rows written per shard    -> manifest.json

The driver then re-reads every shard, checks that each matched file has exactly one
row, and only then moves the CSV file(s) to ``--output``. Any failure leaves nothing
at the output path.

Why the batching is done by hand, not by RunInference's ``BatchElements``:
``BatchElements`` flushes its last partial batch in ``finish_bundle``, and Beam's
Dask runner (2.77) collects a DoFn's outputs *before* calling ``finish_bundle``
(``runners/dask/transform_evaluator.py::apply_dofn_to_bundle``), so those images
would vanish. Here no DoFn emits anything from ``finish_bundle``, no DoFn has
tagged outputs (the Dask runner merges them into one collection), and everything
flows into one final transform (the Dask runner computes only the last transform
it visits). The count check catches drops on any runner.

Rows are built by :mod:`logo_batch.predict` from inputs made by
:func:`logo_batch.preprocessing.preprocess_image_file`, exactly as
``logo-batch predict`` does, so both give the same labels and scores.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import io
import json
import logging
import math
import os
import sys
import time
import uuid
import zlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor
from apache_beam.options.pipeline_options import DirectOptions, PipelineOptions, StandardOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from logo_batch.bundle import METADATA_FILE, BundleMetadata, model_path, read_metadata
from logo_batch.layers import ScalePixels
from logo_batch.predict import (
    CSV_COLUMNS,
    Prediction,
    error_prediction,
    scores_to_prediction,
)
from logo_batch.preprocessing import (
    DEFAULT_MAX_PIXELS,
    ImageDecodeError,
    is_image_path,
    preprocess_image_file,
)

ACCEPTS_EXTRA_ARGS = True  # Beam pipeline options pass through `logo-batch classify`.

METRICS_NAMESPACE = "logo_batch"
MANIFEST_FILE = "manifest.json"
_LOGGER = logging.getLogger(__name__)
_GLOB_CHARS = ("*", "?", "[")
BATCHES_PER_GROUP = 4
DASK_RUNNER = "apache_beam.runners.dask.dask_runner.DaskRunner"


class ClassifyJobError(RuntimeError):
    """The job ran but its result must not be trusted (or there was nothing to do)."""

    def __init__(self, message: str, summary: JobSummary | None = None):
        super().__init__(message)
        self.summary = summary


# ----------------------------------------------------------------------------- helpers


def input_pattern(input_path: str) -> str:
    """The file pattern for ``--input``: a glob as given, a folder as ``folder/**``.

    Beam's filesystems translate ``*`` to "any characters but a separator" and ``**``
    to "any characters", and list folders recursively (local ``os.walk``, object
    stores by prefix), so ``folder/**`` is every file below the folder.
    """
    if any(char in input_path for char in _GLOB_CHARS):
        return input_path
    return input_path.rstrip("/\\") + "/**"


def stable_hash(text: str) -> int:
    """A hash equal in every worker process (``hash()`` of a str is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogateescape"))


def shard_name(index: int, num_shards: int) -> str:
    return f"shard-{index:05d}-of-{num_shards:05d}.csv"


def output_paths(output: str, num_shards: int) -> list[str]:
    """Final file names: ``output`` itself, or ``stem-00000-of-0000N.ext`` per shard."""
    if num_shards == 1:
        return [output]
    stem, ext = os.path.splitext(output)
    return [f"{stem}-{i:05d}-of-{num_shards:05d}{ext or '.csv'}" for i in range(num_shards)]


def _is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def read_bundle_metadata(bundle_dir: str) -> BundleMetadata:
    """``metadata.json`` of a local or remote (gs://, ...) bundle."""
    if _is_local(bundle_dir):
        return read_metadata(bundle_dir)
    with FileSystems.open(FileSystems.join(bundle_dir, METADATA_FILE)) as handle:
        return BundleMetadata.from_dict(json.loads(handle.read().decode("utf-8")))


def bundle_model_uri(bundle_dir: str) -> str:
    if _is_local(bundle_dir):
        return os.path.abspath(model_path(bundle_dir))
    return FileSystems.join(bundle_dir, os.path.basename(model_path(bundle_dir)))


def infer_scores(model, batch, inference_args, model_id=None) -> list[PredictionResult]:
    """RunInference ``inference_fn``: one forward pass over a batch of model inputs.

    The same call as :func:`logo_batch.predict.predict_scores`; the results carry
    the softmax vector only (not the input tensor) to keep them small.
    """
    scores = np.asarray(model(np.stack(batch), training=False, **inference_args), np.float32)
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


# ------------------------------------------------------------------------ PTransforms


class MatchImageFiles(beam.PTransform):
    """Every image file (by extension, any case) matching ``pattern``, as a path."""

    def __init__(self, pattern: str):
        super().__init__()
        self._pattern = pattern

    def expand(self, pbegin):
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._pattern)
            | "Paths" >> beam.Map(lambda metadata: metadata.path)
            | "KeepImages" >> beam.Filter(is_image_path)
        )


def _split_group(keyed_paths, batch_size: int) -> Iterable[tuple[str, ...]]:
    _, paths = keyed_paths
    paths = sorted(paths)
    for start in range(0, len(paths), batch_size):
        yield tuple(paths[start : start + batch_size])


class GroupIntoBatches(beam.PTransform):
    """Paths into batches of at most ``batch_size`` with a GroupByKey.

    ``ceil(N / (BATCHES_PER_GROUP * batch_size))`` keys from a stable hash of the
    path, N the matched count (a side input); each group is cut into batches. Groups
    of several batches keep most batches full despite the uneven hash (with one
    batch per key, a third of the batches were partial). Runner-independent:
    nothing is held back for ``finish_bundle``.
    """

    def __init__(self, matched_count, batch_size: int):
        super().__init__()
        self._matched_count = matched_count
        self._batch_size = batch_size

    def expand(self, paths):
        batch_size = self._batch_size

        def add_key(path: str, count: int):
            num_keys = max(1, math.ceil(count / (BATCHES_PER_GROUP * batch_size)))
            return stable_hash(path) % num_keys, path

        return (
            paths
            | "KeyByBatch" >> beam.Map(add_key, count=beam.pvalue.AsSingleton(self._matched_count))
            | "GroupByBatch" >> beam.GroupByKey()
            | "SplitOversize" >> beam.FlatMap(_split_group, batch_size)
        )


@dataclass
class DecodedBatch:
    """Model inputs of the files of a batch that decoded, and the errors of the rest."""

    inputs: list[tuple[str, np.ndarray]] = field(default_factory=list)
    errors: list[tuple[str, str]] = field(default_factory=list)


def read_file_bytes(path: str) -> bytes:
    """A file's bytes through Beam's filesystems (local, gs://, s3://, ...)."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def decode_file(path: str, image_size: int, max_pixels: int) -> np.ndarray:
    """One file to a model input; raises :class:`ImageDecodeError` with the reason."""
    try:
        data = read_file_bytes(path)
    except Exception as error:  # noqa: BLE001  (every filesystem raises its own kind)
        details = getattr(error, "exception_details", None) or {}  # BeamIOError
        cause = next(iter(details.values()), None) or error
        reason = getattr(cause, "strerror", None) or str(cause)
        raise ImageDecodeError(path, f"cannot read file: {reason}") from error
    return preprocess_image_file(data, image_size, name=path, max_pixels=max_pixels)


class _DecodeBatchFn(beam.DoFn):
    def __init__(self, image_size: int, max_pixels: int):
        self._image_size = image_size
        self._max_pixels = max_pixels
        self._read = Metrics.counter(METRICS_NAMESPACE, "images_read")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed_to_decode")

    def process(self, paths: Sequence[str]):
        batch = DecodedBatch()
        for path in paths:
            try:
                batch.inputs.append((path, decode_file(path, self._image_size, self._max_pixels)))
                self._read.inc()
            except ImageDecodeError as error:
                batch.errors.append((path, error.reason))
                self._failed.inc()
        yield batch


class DecodeImageBatches(beam.PTransform):
    """Batches of paths to :class:`DecodedBatch`; a bad file never fails its batch."""

    def __init__(self, image_size: int, max_pixels: int = DEFAULT_MAX_PIXELS):
        super().__init__()
        self._image_size = image_size
        self._max_pixels = max_pixels

    def expand(self, batches):
        return batches | "Decode" >> beam.ParDo(_DecodeBatchFn(self._image_size, self._max_pixels))


class ClassifyBatches(beam.PTransform):
    """Decoded batches to one :class:`Prediction` per file, through ``RunInference``."""

    def __init__(
        self,
        bundle_dir: str,
        class_names: Sequence[str],
        *,
        top_k: int = 5,
        min_score: float | None = None,
    ):
        super().__init__()
        self._bundle_dir = bundle_dir
        self._class_names = list(class_names)
        self._top_k = top_k
        self._min_score = min_score

    def expand(self, decoded):
        class_names, top_k, min_score = self._class_names, self._top_k, self._min_score

        def to_prediction(keyed_result) -> Prediction:
            path, result = keyed_result
            return scores_to_prediction(
                path, result.inference, class_names, top_k=top_k, min_score=min_score
            )

        classified = (
            decoded
            | "ModelInputs" >> beam.Map(lambda batch: batch.inputs)
            | "SkipEmpty" >> beam.Filter(bool)
            | "RunInference" >> RunInference(make_model_handler(self._bundle_dir))
            | "ToPrediction" >> beam.Map(to_prediction)
        )
        failed = decoded | "DecodeErrors" >> beam.FlatMap(
            lambda batch: [error_prediction(path, reason) for path, reason in batch.errors]
        )
        return (classified, failed) | "AllPredictions" >> beam.Flatten()


class _ToRowFn(beam.DoFn):
    def __init__(self):
        self._classified = Metrics.counter(METRICS_NAMESPACE, "images_classified")
        self._failed = Metrics.counter(METRICS_NAMESPACE, "images_failed")

    def process(self, prediction: Prediction):
        (self._failed if prediction.error else self._classified).inc()
        yield prediction.to_row()


class FormatRows(beam.PTransform):
    """Predictions to CSV rows (dicts keyed by ``CSV_COLUMNS``)."""

    def expand(self, predictions):
        return predictions | "ToRow" >> beam.ParDo(_ToRowFn())


@dataclass(frozen=True)
class ShardWritten:
    """What a shard writer wrote: file name (in the temporary folder) and counts."""

    name: str
    rows: int
    errors: int


def write_csv(path: str, rows: Iterable[dict[str, str]]) -> tuple[int, int]:
    """Writes rows (sorted by path) with a header; returns (rows, error rows)."""
    count = errors = 0
    with FileSystems.create(
        path, mime_type="text/csv", compression_type=CompressionTypes.UNCOMPRESSED
    ) as raw:
        with io.TextIOWrapper(raw, encoding="utf-8", newline="") as text:
            writer = csv.DictWriter(text, fieldnames=CSV_COLUMNS, quoting=csv.QUOTE_MINIMAL)
            writer.writeheader()
            for row in sorted(rows, key=lambda r: r["path"]):
                writer.writerow(row)
                count += 1
                errors += bool(row["error"])
    return count, errors


class _WriteShardFn(beam.DoFn):
    def __init__(self, temp_dir: str, num_shards: int):
        self._temp_dir = temp_dir
        self._num_shards = num_shards

    def process(self, keyed_rows):
        index, rows = keyed_rows
        name = shard_name(index, self._num_shards)
        count, errors = write_csv(FileSystems.join(self._temp_dir, name), rows)
        yield ShardWritten(name, count, errors)


class WriteCsvShards(beam.PTransform):
    """Rows to ``num_shards`` CSV files in ``temp_dir``, each sorted by path."""

    def __init__(self, temp_dir: str, num_shards: int = 1):
        super().__init__()
        self._temp_dir = temp_dir
        self._num_shards = num_shards

    def expand(self, rows):
        num_shards = self._num_shards
        return (
            rows
            | "KeyByShard" >> beam.Map(lambda row: (stable_hash(row["path"]) % num_shards, row))
            | "GroupByShard" >> beam.GroupByKey()
            | "WriteShard" >> beam.ParDo(_WriteShardFn(self._temp_dir, num_shards))
        )


def _write_manifest(keyed_entries, path: str):
    _, entries = keyed_entries
    manifest = {"matched": 0, "shards": {}}
    for kind, value in entries:
        if kind == "matched":
            manifest["matched"] += value
        else:
            manifest["shards"][value.name] = {"rows": value.rows, "errors": value.errors}
    with FileSystems.create(path, mime_type="application/json") as handle:
        handle.write(json.dumps(manifest, sort_keys=True).encode("utf-8"))
    yield manifest


class WriteManifest(beam.PTransform):
    """The matched count and what each shard writer wrote, as one JSON file.

    The last transform of the pipeline: everything else is upstream of it.
    """

    def __init__(self, matched_count, path: str):
        super().__init__()
        self._matched_count = matched_count
        self._path = path

    def expand(self, shards_written):
        matched = self._matched_count | "TagMatched" >> beam.Map(lambda n: ("matched", n))
        written = shards_written | "TagShards" >> beam.Map(lambda s: ("shard", s))
        return (
            (matched, written)
            | "Entries" >> beam.Flatten()
            | "OneKey" >> beam.Map(lambda entry: (None, entry))
            | "Gather" >> beam.GroupByKey()
            | "Write" >> beam.FlatMap(_write_manifest, self._path)
        )


# --------------------------------------------------------------------- pipeline + driver


@dataclass
class JobConfig:
    input: str
    model: str
    output: str
    num_shards: int = 1
    top_k: int = 5
    min_score: float | None = None
    max_error_fraction: float = 1.0
    batch_size: int = 32
    max_pixels: int = DEFAULT_MAX_PIXELS


def build_pipeline(
    pipeline: beam.Pipeline, config: JobConfig, metadata: BundleMetadata, temp_dir: str
):
    """Adds the classification job to ``pipeline``; returns the manifest PCollection."""
    paths = pipeline | "MatchImageFiles" >> MatchImageFiles(input_pattern(config.input))
    matched = paths | "CountMatchedFiles" >> beam.combiners.Count.Globally()
    return (
        paths
        | "GroupIntoBatches" >> GroupIntoBatches(matched, config.batch_size)
        | "DecodeImageBatches" >> DecodeImageBatches(metadata.image_size, config.max_pixels)
        | "ClassifyBatches"
        >> ClassifyBatches(
            config.model, metadata.class_names, top_k=config.top_k, min_score=config.min_score
        )
        | "FormatRows" >> FormatRows()
        | "WriteCsvShards" >> WriteCsvShards(temp_dir, config.num_shards)
        | "WriteManifest" >> WriteManifest(matched, FileSystems.join(temp_dir, MANIFEST_FILE))
    )


def local_cores() -> int:
    """CPU cores this process may use (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0)) or 1
    return os.cpu_count() or 1


def pipeline_options(pipeline_args: Sequence[str]) -> tuple[PipelineOptions, object | None]:
    """Options and runner: the given ``--runner``, else a local multi-process FnApiRunner.

    Never Beam's ``DirectRunner`` default, which tries Prism first (a downloaded Go
    binary). Locally: one SDK worker process per core (``direct_num_workers``),
    each loading the model once.
    """
    options = PipelineOptions(list(pipeline_args))
    standard = options.view_as(StandardOptions)
    if standard.runner:
        if standard.runner.lower() in ("dask", "daskrunner"):  # not in Beam's short names
            standard.runner = DASK_RUNNER
        return options, None
    direct = options.view_as(DirectOptions)
    if not any(arg.startswith("--direct_running_mode") for arg in pipeline_args):
        direct.direct_running_mode = "multi_processing"
    if not any(arg.startswith("--direct_num_workers") for arg in pipeline_args):
        direct.direct_num_workers = local_cores()  # Beam's default is 1
    if direct.direct_running_mode == "multi_processing":
        # One worker process per core: each TensorFlow in them gets its share of the
        # cores, not all of them (N workers x N threads oversubscribes the machine).
        threads = max(1, local_cores() // max(1, direct.direct_num_workers))
        os.environ.setdefault("TF_NUM_INTRAOP_THREADS", str(threads))
        os.environ.setdefault("TF_NUM_INTEROP_THREADS", "1")
        # SDK worker processes start as `python -m ...` in this folder: make sure they
        # import this checkout of logo_batch / beam_jobs even when it is not installed.
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
        if root not in parts:
            os.environ["PYTHONPATH"] = os.pathsep.join([root, *parts])
    return options, FnApiRunner()


@dataclass
class JobSummary:
    matched: int
    written: int
    failed: int
    outputs: list[str]
    seconds: float
    metrics: dict[str, int] = field(default_factory=dict)

    @property
    def classified(self) -> int:
        return self.written - self.failed

    @property
    def error_fraction(self) -> float:
        return self.failed / self.matched if self.matched else 0.0

    def line(self) -> str:
        rate = self.matched / self.seconds if self.seconds > 0 else float("nan")
        where = self.outputs[0] if len(self.outputs) == 1 else f"{len(self.outputs)} shards"
        return (
            f"classify: {self.matched} image files matched, {self.classified} classified, "
            f"{self.failed} failed ({self.error_fraction:.1%}); {self.written} rows written "
            f"to {where} in {self.seconds:.1f} s ({rate:.1f} images/s)"
        )


def _query_metrics(result) -> dict[str, int]:
    """Beam counters where the runner reports them (the Dask runner does not).

    ``model_loads`` is RunInference's own ``load_model_latency_milli_secs`` count:
    how many worker processes loaded the model.
    """
    try:
        found = result.metrics().query(MetricsFilter())
    except Exception:  # noqa: BLE001  (NotImplementedError, or runner-specific)
        return {}
    totals: dict[str, int] = {}
    for counter in found.get("counters", []):
        if counter.key.metric.namespace == METRICS_NAMESPACE:
            name = counter.key.metric.name
            totals[name] = totals.get(name, 0) + int(counter.committed or 0)
    for dist in found.get("distributions", []):
        if dist.key.metric.name == "load_model_latency_milli_secs" and dist.committed:
            totals["model_loads"] = totals.get("model_loads", 0) + dist.committed.count
    return totals


def count_csv_rows(path: str) -> tuple[int, int]:
    """Re-reads a written CSV: (rows, error rows); checks the header."""
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.DictReader(text)
        if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
            raise ClassifyJobError(f"{path}: unexpected header {reader.fieldnames}")
        rows = errors = 0
        for row in reader:
            rows += 1
            errors += bool(row["error"])
    return rows, errors


def _delete_quietly(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # noqa: BLE001
        _LOGGER.warning("could not remove temporary folder %s", path, exc_info=True)


def run_job(config: JobConfig, pipeline_args: Sequence[str] = ()) -> JobSummary:
    """Runs the job; the CSV file(s) appear at ``config.output`` only if it succeeds.

    Raises :class:`ClassifyJobError` when no image matched, when the rows written
    differ from the files matched (nothing is moved into place), or, after writing,
    when the error fraction is above ``config.max_error_fraction``.
    """
    if config.num_shards < 1 or config.batch_size < 1 or config.top_k < 1:
        raise ValueError("--num_shards, --batch_size and --top_k must be at least 1")
    if _is_local(config.output):  # workers may run elsewhere: absolute local paths
        config = dataclasses.replace(config, output=os.path.abspath(config.output))
        os.makedirs(os.path.dirname(config.output), exist_ok=True)
    if _is_local(config.input):
        config = dataclasses.replace(config, input=os.path.abspath(config.input))
    metadata = read_bundle_metadata(config.model)
    out_dir, out_name = os.path.split(config.output)
    temp_dir = FileSystems.join(out_dir, f".{out_name}.tmp-{uuid.uuid4().hex[:12]}")
    FileSystems.mkdirs(temp_dir)
    options, runner = pipeline_options(pipeline_args)
    started = time.monotonic()
    try:
        pipeline = beam.Pipeline(runner=runner, options=options)
        build_pipeline(pipeline, config, metadata, temp_dir)
        result = pipeline.run()
        try:
            result.wait_until_finish()
        finally:
            client = getattr(result, "client", None)  # the Dask runner's; never closed
            if client is not None:
                client.close()
        seconds = time.monotonic() - started
        summary = _verify_and_move(config, temp_dir, seconds, _query_metrics(result))
    finally:
        _delete_quietly(temp_dir)
    if summary.error_fraction > config.max_error_fraction:
        raise ClassifyJobError(
            f"{summary.failed} of {summary.matched} files failed "
            f"({summary.error_fraction:.1%}), above --max_error_fraction "
            f"{config.max_error_fraction:g}; the CSV was written to {config.output} "
            f"and lists every error",
            summary,
        )
    return summary


def _verify_and_move(config: JobConfig, temp_dir: str, seconds: float, metrics) -> JobSummary:
    manifest_path = FileSystems.join(temp_dir, MANIFEST_FILE)
    if not FileSystems.exists(manifest_path):
        raise ClassifyJobError(f"the pipeline finished without writing {manifest_path}")
    with FileSystems.open(manifest_path) as handle:
        manifest = json.loads(handle.read().decode("utf-8"))
    matched = int(manifest["matched"])
    if matched == 0:
        raise ClassifyJobError(f"no image files matched {input_pattern(config.input)}")
    sources, finals = [], output_paths(config.output, config.num_shards)
    written = failed = 0
    for index in range(config.num_shards):
        name = shard_name(index, config.num_shards)
        source = FileSystems.join(temp_dir, name)
        if name not in manifest["shards"]:
            write_csv(source, [])  # a shard no row hashed to: header only
        rows, errors = count_csv_rows(source)
        claimed = manifest["shards"].get(name, {"rows": 0})["rows"]
        if rows != claimed:
            raise ClassifyJobError(f"{name}: {rows} rows on disk, the writer reported {claimed}")
        written, failed = written + rows, failed + errors
        sources.append(source)
    if written != matched:
        raise ClassifyJobError(
            f"{matched} image files matched but {written} rows were written: "
            f"{abs(matched - written)} rows {'missing' if written < matched else 'extra'}; "
            f"nothing written to {config.output}"
        )
    FileSystems.rename(sources, finals)
    return JobSummary(matched, written, failed, finals, seconds, metrics)


# ------------------------------------------------------------------------------ CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--input", required=True, help="image folder (recursive) or glob")
    parser.add_argument("--model", required=True, help="model bundle folder")
    parser.add_argument("--output", required=True, help="CSV file to write")
    parser.add_argument(
        "--num_shards", type=int, default=1, help="write N CSV files, each with a header"
    )
    parser.add_argument("--top_k", type=int, default=5, help="labels and scores per row")
    parser.add_argument(
        "--min_score", type=float, default=None, help="below this top score the label is unknown"
    )
    parser.add_argument(
        "--max_error_fraction",
        type=float,
        default=1.0,
        help="fail (after writing the CSV) when more files than this fraction fail",
    )
    parser.add_argument("--batch_size", type=int, default=32, help="images per model call")
    parser.add_argument(
        "--max_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        help="refuse larger images before decoding them",
    )
    parser.epilog = (
        "Other options go to Beam, e.g. --runner DataflowRunner --project P --region R "
        "--temp_location gs://... --setup_file ./setup.py, or --runner DaskRunner "
        "--dask_client_address HOST:PORT. Default: a local multi-process runner."
    )


def run(args: argparse.Namespace) -> int:
    config = JobConfig(
        input=args.input,
        model=args.model,
        output=args.output,
        num_shards=args.num_shards,
        top_k=args.top_k,
        min_score=args.min_score,
        max_error_fraction=args.max_error_fraction,
        batch_size=args.batch_size,
        max_pixels=args.max_pixels,
    )
    try:
        summary = run_job(config, getattr(args, "extra_args", []))
    except ClassifyJobError as error:
        if error.summary is not None:
            print(error.summary.line())
        print(f"classify FAILED: {error}", file=sys.stderr)
        return 1
    print(summary.line())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.WARNING)
    parser = argparse.ArgumentParser(
        prog="python -m beam_jobs.classify_images", description=__doc__.splitlines()[0]
    )
    configure_parser(parser)
    args, extra = parser.parse_known_args(argv)
    args.extra_args = extra
    return run(args)


if __name__ == "__main__":
    # Run the importable module, not this `__main__` copy: Beam pickles the job's
    # classes by reference, and worker processes can only find them in
    # `beam_jobs.classify_images`.
    from beam_jobs import classify_images

    sys.exit(classify_images.main())
