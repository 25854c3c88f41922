"""Classify image folders in bulk with Apache Beam: one CSV row per image file.

    python -m beam_jobs.classify_images --input DIR_OR_GLOB --model BUNDLE \\
        --output results.csv [--num_shards N] [--top_k K] [--min_score S] \\
        [--max_error_fraction F] [--batch_size B] [-v] [Beam pipeline options...]

Every option of ours takes both spellings (``--num-shards`` = ``--num_shards``); an
option that is neither ours nor a Beam pipeline option is an error.

The pipeline, as named composable PTransforms (the layout of Beam's inference
examples)::

    MatchImageFiles      local: list_local_files (follows symlinked
                         folders, reports unreadable folders, broken
                         links); remote: fileio.MatchFiles; keep image
                         extensions; paths escaped (escape_path)  -> (path, error)
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

Before the pipeline starts the driver checks ``--input`` (a folder is a folder even
with ``[`` or ``*`` in its name; only an input that is not a folder globs), the
output location (not a folder, writable) and the model file (a complete ``.keras``
archive), and removes the temporary folders that killed runs of the same output
left behind. It then re-reads every shard, checks that each matched file has exactly
one row, and only then moves the CSV file(s) to ``--output``, removing the shards an
earlier run with another ``--num_shards`` wrote there. Any failure leaves nothing new
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
import re
import shlex
import shutil
import socket
import stat
import sys
import time
import uuid
import zipfile
import zlib
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

import apache_beam as beam
import numpy as np
from apache_beam.io import fileio
from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems
from apache_beam.metrics import Metrics
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.ml.inference.base import KeyedModelHandler, PredictionResult, RunInference
from apache_beam.ml.inference.tensorflow_inference import TFModelHandlerTensor
from apache_beam.options.pipeline_options import (
    DirectOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.portability import python_urns
from apache_beam.runners.portability.fn_api_runner import FnApiRunner

from logo_batch import console
from logo_batch.bundle import METADATA_FILE, BundleMetadata, model_path, read_metadata
from logo_batch.cli_options import add_option, unknown_beam_options, unknown_option_message
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
COUNTER_ORDER = (
    "files_matched",
    "listing_errors",
    "images_read",
    "images_failed_to_decode",
    "images_classified",
    "images_failed",
    "model_loads",
)
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


def has_glob_chars(path: str) -> bool:
    return any(char in path for char in _GLOB_CHARS)


def escape_glob(path: str) -> str:
    """``path`` as a Beam file pattern matching only itself: ``[`` ``*`` ``?`` in brackets."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def input_pattern(input_path: str) -> str:
    """The file pattern for a remote ``--input``: a glob as given, a folder as ``folder/**``.

    Beam's filesystems translate ``*`` to "any characters but a separator" and ``**``
    to "any characters", and list folders recursively (local ``os.walk``, object
    stores by prefix), so ``folder/**`` is every file below the folder. The folder's
    own name is escaped: ``photos[2019]`` is that folder, not a character class.
    """
    if has_glob_chars(input_path):
        return input_path
    return escape_glob(input_path.rstrip("/\\")) + "/**"


@dataclass(frozen=True)
class InputSpec:
    """What ``--input`` lists: a local folder or file, a local glob, or a remote pattern.

    ``root`` is the local folder (or file) to list, ``pattern`` the Beam-syntax glob
    the listed paths must match (None: every image below ``root``).
    """

    input: str
    local: bool
    root: str | None = None
    pattern: str | None = None

    def describe(self) -> str:
        if not self.local:
            return f"{self.pattern} (pattern)"
        if self.pattern:
            return f"{self.pattern} (glob)"
        return f"{self.root} ({'folder, recursive' if os.path.isdir(self.root) else 'file'})"


def _local_path(path: str) -> str:
    if path.startswith("file://"):
        path = path[len("file://") :]
    return os.path.abspath(path)


def glob_base(pattern: str) -> str:
    """The deepest folder of ``pattern`` above its first glob character."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if has_glob_chars(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or os.sep


def resolve_input(input_path: str) -> InputSpec:
    """Decides what ``--input`` means: a folder is a folder, whatever its name holds.

    Only an input that is not an existing folder (or file) and holds ``*``, ``?`` or
    ``[`` is a glob. Raises :class:`ClassifyJobError` for a local input that is
    neither.
    """
    if _is_local(input_path):
        path = _local_path(input_path)
        if os.path.isdir(path) or os.path.isfile(path):
            return InputSpec(input_path, True, root=path)
        if has_glob_chars(path):
            return InputSpec(input_path, True, root=glob_base(path), pattern=path)
        raise ClassifyJobError(f"--input {input_path}: no such folder or file")
    if has_glob_chars(input_path):
        literal = escape_glob(input_path.rstrip("/\\")) + "/**"
        try:
            is_folder = bool(FileSystems.match([literal], [1])[0].metadata_list)
        except Exception:  # noqa: BLE001  (nothing there: then it is a glob)
            is_folder = False
        return InputSpec(input_path, False, pattern=literal if is_folder else input_path)
    return InputSpec(input_path, False, pattern=input_pattern(input_path))


# ----------------------------------------------------------------- paths in the CSV


def escape_path(path: str) -> str:
    """A file path as written in the CSV: valid UTF-8 whatever bytes the name holds.

    A byte that is not part of valid UTF-8 is written ``\\xNN`` (two lowercase hex
    digits) and a backslash is written ``\\\\``; everything else is as is. The
    escaping is reversible: :func:`path_bytes` gives the original bytes back.
    Local paths come from the OS as ``str`` with undecodable bytes as surrogates
    (PEP 383), which no UTF-8 encoder (Beam's coders, the CSV writer) accepts.
    """
    raw = path.encode("utf-8", "surrogateescape")
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


_ESCAPE = re.compile(rb"\\(\\|x[0-9a-fA-F]{2})")


def path_bytes(escaped: str) -> bytes:
    """The original bytes of a path written by :func:`escape_path` (a CSV ``path``)."""

    def unescape(match: re.Match) -> bytes:
        code = match.group(1)
        return b"\\" if code == b"\\" else bytes([int(code[1:], 16)])

    return _ESCAPE.sub(unescape, escaped.encode("utf-8"))


def unescape_path(escaped: str) -> str:
    """The path to open for a CSV ``path`` (undecodable bytes as surrogates)."""
    return path_bytes(escaped).decode("utf-8", "surrogateescape")


# ------------------------------------------------------------------------- listing


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _glob_depth(root: str, pattern: str) -> int | None:
    """How many folders below ``root`` a glob can reach (None: any depth, ``**``)."""
    rest = os.path.relpath(pattern, root).split(os.sep)
    if any("**" in part for part in rest):
        return None
    return len(rest) - 1


_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _file_problem(path: str) -> str:
    """Why a listed image path cannot be read ("" when it is a regular file)."""
    try:
        info = os.stat(path)  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (to {escape_path(os.readlink(path))})"
        return ""  # vanished since listed: reading it reports that
    except OSError as error:  # a link loop, a folder we may not search, ...
        return f"cannot read file: {_reason(error)}"
    if stat.S_ISREG(info.st_mode):
        return ""
    return f"not a regular file ({_FILE_KINDS.get(stat.S_IFMT(info.st_mode), 'special file')})"


def list_local_files(root: str, pattern: str | None = None) -> Iterator[tuple[str, str]]:
    """Every image file below the local folder ``root`` as ``(escaped path, error)``.

    ``error`` is "" for a file to classify. Nothing is skipped silently: a folder that
    cannot be read is an entry with its reason (``cannot read folder: Permission
    denied``), a broken symbolic link with an image name is an entry with the
    reason, and so is a named pipe or device with an image name (reading it would
    block or never end). Symbolic links to folders are followed; each real folder
    (device, inode) is listed once, so a link to an ancestor cannot loop. With
    ``pattern`` (Beam glob syntax) only matching paths are kept, and only as deep as
    the pattern reaches.
    """
    if not os.path.isdir(root):
        if os.path.lexists(root) and is_image_path(root):
            yield escape_path(root), _file_problem(root)
        return
    regex = re.compile(FileSystem.translate_pattern(pattern)) if pattern else None
    max_depth = _glob_depth(root, pattern) if pattern else None
    visited: set[tuple[int, int]] = set()
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in visited:
                continue  # a link back to a folder already listed
            visited.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            yield escape_path(folder), f"cannot read folder: {_reason(error)}"
            continue
        subfolders = []
        for entry in entries:
            try:
                is_folder = entry.is_dir()  # follows symbolic links
            except OSError:
                is_folder = False
            if is_folder:
                if max_depth is None or depth < max_depth:
                    subfolders.append(entry.path)
                continue
            if not is_image_path(entry.path) or (regex and not regex.match(entry.path)):
                continue
            yield escape_path(entry.path), _file_problem(entry.path)
        stack.extend((path, depth + 1) for path in reversed(subfolders))


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


class _ListLocalFn(beam.DoFn):
    def __init__(self):
        self._matched = Metrics.counter(METRICS_NAMESPACE, "files_matched")
        self._errors = Metrics.counter(METRICS_NAMESPACE, "listing_errors")

    def process(self, spec: InputSpec):
        for path, error in list_local_files(spec.root, spec.pattern):
            self._matched.inc()
            if error:
                self._errors.inc()
            yield path, error


class _RemoteMatchFn(beam.DoFn):
    def __init__(self):
        self._matched = Metrics.counter(METRICS_NAMESPACE, "files_matched")

    def process(self, metadata):
        if is_image_path(metadata.path):
            self._matched.inc()
            yield escape_path(metadata.path), ""


class MatchImageFiles(beam.PTransform):
    """Every image file (by extension, any case) of ``--input`` as ``(path, error)``.

    ``path`` is escaped (:func:`escape_path`); ``error`` is "" for a file to read, or
    why the entry cannot be (an unreadable folder, a broken symbolic link): each
    entry becomes one CSV row. Local inputs are listed by :func:`list_local_files`,
    remote ones by Beam's ``fileio.MatchFiles``.
    """

    def __init__(self, spec: InputSpec | str):
        super().__init__()
        self._spec = spec if isinstance(spec, InputSpec) else resolve_input(spec)

    def expand(self, pbegin):
        if self._spec.local:
            return (
                pbegin
                | "Input" >> beam.Create([self._spec])
                | "ListLocalFiles" >> beam.ParDo(_ListLocalFn())
            )
        return (
            pbegin
            | "MatchFiles" >> fileio.MatchFiles(self._spec.pattern)
            | "KeepImages" >> beam.ParDo(_RemoteMatchFn())
        )


def _split_group(keyed_entries, batch_size: int) -> Iterable[tuple[tuple[str, str], ...]]:
    _, entries = keyed_entries
    entries = sorted(entries, key=lambda entry: entry[0])
    for start in range(0, len(entries), batch_size):
        yield tuple(entries[start : start + batch_size])


class GroupIntoBatches(beam.PTransform):
    """``(path, error)`` entries into batches of at most ``batch_size`` with a GroupByKey.

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

    def expand(self, entries):
        batch_size = self._batch_size

        def add_key(entry: tuple[str, str], count: int):
            num_keys = max(1, math.ceil(count / (BATCHES_PER_GROUP * batch_size)))
            return stable_hash(entry[0]) % num_keys, entry

        return (
            entries
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
    """A file's bytes: local paths directly (any bytes in the name), others through
    Beam's filesystems (gs://, s3://, ...)."""
    if FileSystems.get_scheme(path) is None:
        with open(path, "rb") as handle:
            return handle.read()
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read()


def decode_file(path: str, image_size: int, max_pixels: int) -> np.ndarray:
    """One file (an escaped CSV path) to a model input; raises
    :class:`ImageDecodeError` with the reason."""
    try:
        data = read_file_bytes(unescape_path(path))
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

    def process(self, entries: Sequence[tuple[str, str]]):
        batch = DecodedBatch()
        for path, listing_error in entries:
            if listing_error:
                batch.errors.append((path, listing_error))
                continue
            try:
                batch.inputs.append((path, decode_file(path, self._image_size, self._max_pixels)))
                self._read.inc()
            except ImageDecodeError as error:
                batch.errors.append((path, error.reason))
                self._failed.inc()
        yield batch


class DecodeImageBatches(beam.PTransform):
    """Batches of ``(path, error)`` to :class:`DecodedBatch`; a bad file never fails
    its batch, and an entry that already has an error is passed on as one."""

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
    entries = pipeline | "MatchImageFiles" >> MatchImageFiles(resolve_input(config.input))
    matched = entries | "CountMatchedFiles" >> beam.combiners.Count.Globally()
    return (
        entries
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


_BEAM_WORKER_MAIN = "-m apache_beam.runners.worker.sdk_worker_main"


class LocalRunner(FnApiRunner):
    """Beam's local portable runner, its worker processes started as
    :mod:`beam_jobs.sdk_worker`: they exit when the driver dies, and stay quiet.

    ``FnApiRunner`` (``direct_running_mode = multi_processing``) starts each worker
    with the shell command ``<python> -m apache_beam.runners.worker.sdk_worker_main``,
    the payload of the pipeline's subprocess environment; this runner swaps that
    command for ``<python> -m beam_jobs.sdk_worker --driver_pid <this process>``,
    which runs the same worker main.
    """

    def __init__(self, quiet: bool = False):
        super().__init__()
        self.quiet = quiet

    def worker_command(self) -> str:
        command = (
            f"{shlex.quote(sys.executable)} -m beam_jobs.sdk_worker --driver_pid {os.getpid()}"
        )
        if self.quiet:  # TensorFlow reads this when the worker imports it
            command = f"env TF_CPP_MIN_LOG_LEVEL=3 {command} --quiet"
        return f"exec {command}"  # the shell Beam runs it with becomes the worker

    def run_via_runner_api(self, pipeline_proto, options):
        for environment in pipeline_proto.components.environments.values():
            if environment.urn == python_urns.SUBPROCESS_SDK and environment.payload.decode(
                "utf-8"
            ).endswith(_BEAM_WORKER_MAIN):
                environment.payload = self.worker_command().encode("utf-8")
        return super().run_via_runner_api(pipeline_proto, options)


def pipeline_options(
    pipeline_args: Sequence[str], quiet: bool = False
) -> tuple[PipelineOptions, object | None]:
    """Options and runner: the given ``--runner``, else a local multi-process
    :class:`LocalRunner`.

    Never Beam's ``DirectRunner`` default, which tries Prism first (a downloaded Go
    binary). Locally: one SDK worker process per core (``direct_num_workers``),
    each loading the model once; ``quiet``: workers log errors only
    (:mod:`beam_jobs.sdk_worker`).
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
    return options, LocalRunner(quiet=quiet)


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

    def counters_line(self) -> str:
        """The job's Beam counters (as the runner reported them)."""
        if not self.metrics:
            return "classify counters: not reported by this runner"
        names = [name for name in COUNTER_ORDER if name in self.metrics]
        names += sorted(set(self.metrics) - set(names))
        return "classify counters: " + " ".join(f"{n}={self.metrics[n]}" for n in names)


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


# ------------------------------------------------------------ checks before the run


def check_output(output: str, num_shards: int) -> None:
    """Fails before any work when the CSV file(s) could not be written at ``output``.

    Local outputs only (a remote store is checked when written): no output path may
    be a folder, and the nearest existing folder above must be a writable folder.
    Creates the output's folder.
    """
    if not _is_local(output):
        return
    for path in [output, *output_paths(output, num_shards)]:
        if os.path.isdir(path):
            raise ClassifyJobError(
                f"{path}: --output is a folder; give a CSV file name, e.g. "
                f"{os.path.join(path, 'results.csv')}"
            )
    parent = os.path.dirname(output)
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ClassifyJobError(f"cannot write {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ClassifyJobError(f"cannot write {output}: {existing}: no permission to write there")
    try:
        os.makedirs(parent, exist_ok=True)
    except OSError as error:
        raise ClassifyJobError(f"cannot write {output}: {parent}: {_reason(error)}") from error


def check_model_file(bundle_dir: str) -> None:
    """Fails before any work unless the bundle's ``model.keras`` is a complete archive.

    A ``.keras`` file is a zip archive holding ``config.json`` (and the weights); a
    truncated or overwritten file fails its central directory or CRC checks.
    """
    path = bundle_model_uri(bundle_dir)
    try:
        if _is_local(path):
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
        reason = _reason(error) if isinstance(error, OSError) else str(error)
        raise ClassifyJobError(
            f"{path}: the model file is unreadable or corrupt ({reason}); "
            f"save the bundle again (logo-batch train writes it)"
        ) from error
    if damaged is not None or "config.json" not in names:
        what = f"member {damaged} fails its CRC" if damaged else "no config.json"
        raise ClassifyJobError(f"{path}: the model file is corrupt ({what})")


_TEMP_SUFFIX = re.compile(r"\.tmp-(?P<host>.+)-(?P<pid>\d+)-(?P<token>[0-9a-f]{12})")


def temp_folder(output: str) -> str:
    """``.NAME.tmp-HOST-PID-TOKEN`` beside the output: whose run made it, findable."""
    out_dir, out_name = os.path.split(output)
    token = uuid.uuid4().hex[:12]
    return FileSystems.join(
        out_dir, f".{out_name}.tmp-{socket.gethostname()}-{os.getpid()}-{token}"
    )


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def remove_stale_temp_folders(output: str) -> list[str]:
    """Removes the temporary folders of ``output`` whose run is dead; returns them.

    A run that was killed (SIGKILL, SIGTERM, a crash) leaves its
    ``.NAME.tmp-HOST-PID-TOKEN`` folder. Only folders of this output, made on this
    host by a process that no longer exists, are removed: never another live run's.
    Local outputs only.
    """
    if not _is_local(output):
        return []
    out_dir, out_name = os.path.split(output)
    prefix = f".{out_name}"
    removed = []
    try:
        names = os.listdir(out_dir)
    except OSError:
        return []
    for name in sorted(names):
        match = _TEMP_SUFFIX.fullmatch(name[len(prefix) :]) if name.startswith(prefix) else None
        if not match or match["host"] != socket.gethostname() or _pid_alive(int(match["pid"])):
            continue
        path = os.path.join(out_dir, name)
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
            _LOGGER.info("removed %s, left by a run that was killed", path)
    return removed


def previous_outputs(output: str) -> list[str]:
    """The CSV files an earlier run of ``output`` wrote, with any ``--num_shards``:
    ``output`` itself and ``STEM-NNNNN-of-NNNNN.EXT``."""
    stem, ext = os.path.splitext(output)
    shard = re.compile(
        re.escape(os.path.basename(stem)) + r"-\d{5}-of-\d{5}" + re.escape(ext or ".csv")
    )
    if _is_local(output):
        folder = os.path.dirname(output)
        try:
            names = os.listdir(folder)
        except OSError:
            return []
        found = [os.path.join(folder, n) for n in names if shard.fullmatch(n)]
        return sorted(found + ([output] if os.path.isfile(output) else []))
    pattern = escape_glob(stem) + "-*-of-*" + escape_glob(ext or ".csv")
    found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    found = [path for path in found if shard.fullmatch(path.rsplit("/", 1)[-1])]
    return sorted(found + ([output] if FileSystems.exists(output) else []))


def run_job(
    config: JobConfig, pipeline_args: Sequence[str] = (), *, quiet: bool = False
) -> JobSummary:
    """Runs the job; the CSV file(s) appear at ``config.output`` only if it succeeds.

    Before the pipeline starts: resolves ``--input``, checks the output location and
    the model file, and removes the temporary folders killed runs of this output
    left (raises :class:`ClassifyJobError` for a bad input, output or model).
    Raises :class:`ClassifyJobError` when no image matched, when the rows written
    differ from the files matched (nothing is moved into place), or, after writing,
    when the error fraction is above ``config.max_error_fraction``. ``quiet``: the
    local runner's workers log errors only.
    """
    if config.num_shards < 1 or config.batch_size < 1 or config.top_k < 1:
        raise ValueError("--num_shards, --batch_size and --top_k must be at least 1")
    if _is_local(config.output):  # workers may run elsewhere: absolute local paths
        config = dataclasses.replace(config, output=_local_path(config.output))
    spec = resolve_input(config.input)
    if spec.local:
        config = dataclasses.replace(config, input=spec.pattern or spec.root)
    check_output(config.output, config.num_shards)
    try:
        metadata = read_bundle_metadata(config.model)
    except (OSError, ValueError) as error:
        raise ClassifyJobError(str(error)) from error
    check_model_file(config.model)
    remove_stale_temp_folders(config.output)
    temp_dir = temp_folder(config.output)
    try:
        FileSystems.mkdirs(temp_dir)
    except Exception as error:  # noqa: BLE001  (BeamIOError and friends)
        raise ClassifyJobError(f"cannot write {config.output}: {error}") from error
    options, runner = pipeline_options(pipeline_args, quiet=quiet)
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
        raise ClassifyJobError(f"no image files matched {resolve_input(config.input).describe()}")
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
    stale = [path for path in previous_outputs(config.output) if path not in finals]
    FileSystems.rename(sources, finals)
    if stale:  # an earlier run's shards (another --num_shards): not part of this output
        FileSystems.delete(stale)
    return JobSummary(matched, written, failed, finals, seconds, metrics)


# ------------------------------------------------------------------------------ CLI


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Our options, each in both spellings (``--num-shards`` = ``--num_shards``)."""
    add_option(parser, "--input", required=True, help="image folder (recursive) or glob")
    add_option(parser, "--model", required=True, help="model bundle folder")
    add_option(parser, "--output", required=True, help="CSV file to write")
    add_option(
        parser,
        "--num_shards",
        type=int,
        default=1,
        metavar="N",
        help="write N CSV files, each with a header",
    )
    add_option(
        parser, "--top_k", type=int, default=5, metavar="K", help="labels and scores per row"
    )
    add_option(
        parser,
        "--min_score",
        type=float,
        default=None,
        metavar="S",
        help="below this top score the label is unknown",
    )
    add_option(
        parser,
        "--max_error_fraction",
        type=float,
        default=1.0,
        metavar="F",
        help="fail (after writing the CSV) when more files than this fraction fail",
    )
    add_option(
        parser, "--batch_size", type=int, default=32, metavar="B", help="images per model call"
    )
    add_option(
        parser,
        "--max_pixels",
        type=int,
        default=DEFAULT_MAX_PIXELS,
        metavar="P",
        help="refuse larger images before decoding them",
    )
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show the runner's logs (Beam, TensorFlow, worker processes)",
    )
    parser.epilog = (
        "Other options go to Beam, e.g. --runner DataflowRunner --project P --region R "
        "--temp_location gs://... --setup_file ./setup.py, or --runner DaskRunner "
        "--dask_client_address HOST:PORT; an option that is neither ours nor Beam's is "
        "an error. Default: a local multi-process runner."
    )


def _our_options() -> list[str]:
    parser = argparse.ArgumentParser(add_help=False)
    configure_parser(parser)
    return [option for action in parser._actions for option in action.option_strings]


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level)  # no-op when the root logger has handlers
    logging.getLogger().setLevel(level)
    if verbose:
        import beam_jobs

        sys.stderr.write(beam_jobs.STARTUP_LOG)  # TensorFlow's and Beam's import lines


def run(args: argparse.Namespace) -> int:
    verbose = bool(getattr(args, "verbose", False)) or console.is_verbose()
    extra = list(getattr(args, "extra_args", []))
    unknown = unknown_beam_options(extra)
    if unknown:
        message = unknown_option_message(unknown, _our_options(), extra)
        print(f"classify: error: {message}", file=sys.stderr)
        return 2
    _configure_logging(verbose)
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
        spec = resolve_input(config.input)
        print(f"classify: {spec.describe()} with model {config.model} -> {config.output}")
        sys.stdout.flush()
        summary = run_job(config, extra, quiet=not verbose)
    except ClassifyJobError as error:
        if error.summary is not None:
            print(error.summary.line())
            print(error.summary.counters_line())
        print(f"classify FAILED: {error}", file=sys.stderr)
        return 1
    print(summary.line())
    print(summary.counters_line())
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
