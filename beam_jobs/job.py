"""The classification job: its configuration, the pipeline as it reads, and its driver."""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import apache_beam as beam
from apache_beam.io.filesystems import FileSystems

from beam_jobs.batching import GroupIntoBatches
from beam_jobs.bundle_shards import WriteBundleShards
from beam_jobs.counts import CountGlobally
from beam_jobs.decoding import DecodeImageBatches
from beam_jobs.errors import ClassifyJobError
from beam_jobs.fingerprint import bundle_digest, job_fingerprint
from beam_jobs.hash_shards import WriteCsvShards
from beam_jobs.inputs import (
    InputSpec,
    absolute_input,
    describe_inputs,
    fewer_than,
    is_local,
    local_path,
    resolve_inputs,
)
from beam_jobs.manifest import MANIFEST_FILE, WriteManifest, check_shards, header_only_shards
from beam_jobs.matching import MatchInputs
from beam_jobs.model import check_bundle, engines_used
from beam_jobs.output_files import (
    check_output,
    delete_quietly,
    make_output_folder,
    output_paths,
    previous_outputs,
    remove_stale_temp_folders,
    temp_folder,
)
from beam_jobs.output_guard import check_replaced
from beam_jobs.previous import (
    REUSE_COUNTS_FILE,
    PreviousOutput,
    ReusePrevious,
    open_previous,
    read_reuse_counts,
    reuse_note,
)
from beam_jobs.progress import (
    DONE,
    MATCHED,
    TO_CLASSIFY,
    CountProgress,
    RecordTotal,
    folder_counts,
    metrics_counts,
    printing_progress,
    progress_folder,
)
from beam_jobs.run_manifest import manifest_content, run_manifest_path, stage_manifest
from beam_jobs.runner import SMALL_RUN_FILES, pipeline_options, query_metrics
from beam_jobs.shards import AUTO_SHARDS, ROWS_PER_SHARD
from beam_jobs.summary import JobSummary
from beam_jobs.transforms import ClassifyBatches, FormatRows
from logo_batch import console
from logo_batch.inference import engines
from logo_batch.inference.bundle import BundleMetadata, read_metadata
from logo_batch.inference.file_access import DEFAULT_MAX_BYTES
from logo_batch.inference.predict import (
    AUTO,
    WHOLE,
    background_class_of,
    effective_min_score,
    resolve_mode,
)
from logo_batch.inference.preprocessing import DEFAULT_MAX_PIXELS
from logo_batch.inference.whole_photo import DEFAULT_GRID, Grid


@dataclass
class JobConfig:
    # Folders or globs (one str, or several); () when only file lists are given.
    input: str | Sequence[str]
    model: str
    output: str
    num_shards: int = AUTO_SHARDS  # auto: one shard per rows_per_shard rows (shards)
    rows_per_shard: int = ROWS_PER_SHARD
    top_k: int = 5
    min_score: float | str | None = None  # a number, "bundle" or None (effective_min_score)
    max_error_fraction: float = 1.0
    batch_size: int = 32
    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES  # larger files are error rows, never read
    # auto: whole for a bundle with a background class, single otherwise (resolve_mode).
    mode: str = AUTO
    grid: Grid = DEFAULT_GRID
    # auto: the bundle's int8 model on workers with int8 dot products (inference.engines).
    precision: str = "auto"
    file_list: Sequence[str] = ()  # text or CSV files naming files (beam_jobs.file_lists)
    previous: str | None = None  # an earlier output whose rows still hold (beam_jobs.previous)
    checksum: bool = False  # --previous compares content (SHA-256), not modified times
    progress_interval: float = 30.0  # seconds between progress lines; 0: none


def fingerprint_of(config: JobConfig, metadata: BundleMetadata) -> str:
    """The fingerprint of the rows ``config`` makes (:mod:`beam_jobs.fingerprint`)."""
    mode = resolve_mode(config.mode, metadata)
    return job_fingerprint(
        config.model,
        mode=mode,
        grid=config.grid,
        top_k=config.top_k,
        min_score=effective_min_score(config.min_score, mode, metadata),
        max_pixels=config.max_pixels,
        precision=config.precision,
        int8_model=engines.may_use_int8(config.precision, metadata),
        tflite_model=engines.may_use_tflite(config.precision, metadata),
    )


def build_pipeline(
    pipeline: beam.Pipeline,
    config: JobConfig,
    metadata: BundleMetadata,
    temp_dir: str,
    *,
    fingerprint: str = "",
    previous: PreviousOutput | None = None,
    progress_dir: str | None = None,
):
    """Adds the classification job to ``pipeline``; returns the manifest PCollection.

    ``config.mode`` ``auto`` is resolved here (:func:`logo_batch.inference.predict.resolve_mode`),
    and in whole mode a ``min_score`` of None means the bundle's rejection threshold.
    ``fingerprint``: the rows' (default :func:`fingerprint_of`); ``previous``: an
    earlier output whose rows still hold are carried over (:mod:`beam_jobs.previous`);
    ``progress_dir``: a local folder the DoFns count into (:mod:`beam_jobs.progress`).
    """
    mode = resolve_mode(config.mode, metadata)
    min_score = effective_min_score(config.min_score, mode, metadata)
    fingerprint = fingerprint or fingerprint_of(config, metadata)
    specs = resolve_inputs(config.input, config.file_list)
    entries, skipped = pipeline | "MatchInputs" >> MatchInputs(specs, progress_dir)
    matched = entries | "CountMatchedFiles" >> CountGlobally()
    _ = matched | "ReportMatched" >> RecordTotal(progress_dir, MATCHED)
    to_classify, carried = entries, None
    if previous is not None and previous.files:
        counts_path = FileSystems.join(temp_dir, REUSE_COUNTS_FILE)
        to_classify, carried = entries | "ReusePrevious" >> ReusePrevious(
            previous, fingerprint, counts_path, checksum=config.checksum
        )
        to_classify_count = to_classify | "CountFilesToClassify" >> CountGlobally()
    else:
        to_classify_count = matched
    _ = to_classify_count | "ReportToClassify" >> RecordTotal(progress_dir, TO_CLASSIFY)
    rows = (
        to_classify
        | "GroupIntoBatches" >> GroupIntoBatches(config.batch_size)
        | "DecodeImageBatches"
        >> DecodeImageBatches(
            metadata.image_size,
            config.max_pixels,
            mode=mode,
            grid=config.grid,
            max_bytes=config.max_bytes,
            checksum=config.checksum,
        )
        | "ClassifyBatches"
        >> ClassifyBatches(
            config.model,
            metadata.class_names,
            top_k=config.top_k,
            min_score=min_score,
            mode=mode,
            background_class=background_class_of(metadata),
            batch_size=config.batch_size,
            precision=config.precision,
        )
        | "FormatRows" >> FormatRows(fingerprint)
        | "CountProgress" >> CountProgress(progress_dir, DONE)
    )
    if config.num_shards in (AUTO_SHARDS, 1):  # written where the rows are: no shuffle
        branches = (rows,) if carried is None else (rows, carried)
        written = branches | "WriteCsvShards" >> WriteBundleShards(
            temp_dir, rows_per_shard=config.rows_per_shard, one_file=config.num_shards == 1
        )
    else:  # N shards by hash of the path: a GroupByKey of the rows
        if carried is not None:
            rows = (rows, carried) | "WithReusedRows" >> beam.Flatten()
        written = rows | "WriteCsvShards" >> WriteCsvShards(
            temp_dir, config.num_shards, row_count=matched, rows_per_shard=config.rows_per_shard
        )
    return written | "WriteManifest" >> WriteManifest(
        matched, FileSystems.join(temp_dir, MANIFEST_FILE), skipped
    )


def run_job(
    config: JobConfig,
    pipeline_args: Sequence[str] = (),
    *,
    quiet: bool = False,
    report: Callable[[str], None] | None = None,
) -> JobSummary:
    """Runs the job; the CSV file(s) appear at ``config.output`` only if it succeeds.

    Before the pipeline starts: resolves ``--input``, checks the output location (and
    that it replaces nothing but an earlier output of this job:
    :func:`~beam_jobs.output_guard.check_replaced`) and the model file, and removes
    the temporary folders killed runs of this output left (raises
    :class:`ClassifyJobError` for a bad input, output or model).
    A run that matched no file writes the header only (and warns through ``report``).
    Raises :class:`ClassifyJobError` when the rows written differ from the files
    matched (nothing is moved into place), or, after writing, when the error fraction
    is above ``config.max_error_fraction``. ``quiet``: the local runner's workers log
    errors only. ``report``: where progress lines (every ``config.progress_interval``
    seconds, :mod:`beam_jobs.progress`) and notes go; None: nowhere.
    """
    if config.num_shards < 0 or config.rows_per_shard < 1:
        raise ValueError("--num_shards must be at least 1 (or auto), --rows_per_shard at least 1")
    if config.batch_size < 1 or config.top_k < 1:
        raise ValueError("--batch_size and --top_k must be at least 1")
    if is_local(config.output):  # workers may run elsewhere: absolute local paths
        config = dataclasses.replace(config, output=local_path(config.output))
    specs = resolve_inputs(config.input, config.file_list)
    folders = [absolute_input(spec) for spec in specs if isinstance(spec, InputSpec)]
    lists = [spec.path for spec in specs if not isinstance(spec, InputSpec)]
    config = dataclasses.replace(
        config, input=folders[0] if len(folders) == 1 else folders, file_list=lists
    )
    check_output(config.output, config.num_shards)
    check_replaced(
        config.output, config.num_shards, specs, previous=config.previous, model=config.model
    )
    metadata = check_bundle(config.model, config.precision)
    try:
        config = dataclasses.replace(config, mode=resolve_mode(config.mode, metadata))
    except ValueError as error:
        raise ClassifyJobError(str(error)) from error
    fingerprint = fingerprint_of(config, metadata)
    previous = open_previous(config.previous, fingerprint) if config.previous else None
    if previous is not None and previous.note and report is not None:
        report(f"classify: nothing reused from --previous {previous.name}: {previous.note}")
    make_output_folder(config.output)
    remove_stale_temp_folders(config.output)
    temp_dir = temp_folder(config.output)
    try:
        FileSystems.mkdirs(temp_dir)
    except Exception as error:  # noqa: BLE001  (BeamIOError and friends)
        raise ClassifyJobError(f"cannot write {config.output}: {error}") from error
    small, tf_engine = (
        fewer_than(specs, SMALL_RUN_FILES),
        engines.needs_tensorflow(engines.resolve_engine(config.precision, metadata)),
    )
    options, runner = pipeline_options(pipeline_args, quiet, small=small, tensorflow=tf_engine)
    # The local runner runs the whole pipeline inside run(): its DoFns count into files.
    watch_local = runner is not None and report is not None and config.progress_interval > 0
    progress_dir = progress_folder() if watch_local else None
    started = time.monotonic()
    try:
        pipeline = beam.Pipeline(runner=runner, options=options)
        build_pipeline(
            pipeline,
            config,
            metadata,
            temp_dir,
            fingerprint=fingerprint,
            previous=previous,
            progress_dir=progress_dir,
        )
        local_source = (lambda: folder_counts(progress_dir)) if progress_dir else None
        with printing_progress(local_source, report, config.progress_interval):
            result = pipeline.run()
        try:
            remote_source = None if progress_dir else lambda: metrics_counts(query_metrics(result))
            with printing_progress(remote_source, report, config.progress_interval):
                result.wait_until_finish()
        finally:
            client = getattr(result, "client", None)  # the Dask runner's; never closed
            if client is not None:
                client.close()
        seconds = time.monotonic() - started
        metrics = query_metrics(result)
        reuse: dict[str, int] | None = {}
        if previous is not None and previous.files:
            reuse = read_reuse_counts(FileSystems.join(temp_dir, REUSE_COUNTS_FILE), metrics)
        record = run_record(config, metadata, fingerprint)
        summary = verify_and_move(config, temp_dir, seconds, metrics, record)
        summary.mode = config.mode
        if previous is not None:
            summary.reused = (reuse or {}).get("reused", 0)
            summary.reuse_note = reuse_note(previous, reuse)
    finally:
        delete_quietly(temp_dir)
        if progress_dir:
            shutil.rmtree(progress_dir, ignore_errors=True)
    if summary.matched == 0 and report is not None:
        inputs = describe_inputs(resolve_inputs(config.input, config.file_list))
        report(
            f"classify: warning: no image files matched {inputs}; {config.output} holds the "
            "header only"
        )
    if summary.error_fraction > config.max_error_fraction:
        raise ClassifyJobError(
            f"{summary.failed} of {summary.matched} files failed "
            f"({summary.error_fraction:.1%}), above --max_error_fraction "
            f"{config.max_error_fraction:g}; the CSV was written to {config.output} "
            f"and lists every error",
            summary,
        )
    return summary


def run_record(config: JobConfig, metadata: BundleMetadata, fingerprint: str) -> dict:
    """What the run's manifest says of the model, settings and inputs
    (:mod:`beam_jobs.run_manifest`; counts and engines are added once known)."""
    mode = resolve_mode(config.mode, metadata)
    return {
        "model": {
            "path": config.model,
            "sha256": bundle_digest(config.model),
            "class_names": list(metadata.class_names),
            "background_class": metadata.background_class,
        },
        "settings": {
            "mode": mode,
            "precision": config.precision,
            "min_score": effective_min_score(config.min_score, mode, metadata),
            "top_k": config.top_k,
            "max_pixels": config.max_pixels,
            "max_bytes": config.max_bytes,
            "batch_size": config.batch_size,
            "grid": [list(cell) for cell in config.grid] if mode == WHOLE else None,
            "fingerprint": fingerprint,
        },
        "inputs": {
            "input": config.input,
            "file_list": list(config.file_list),
            "previous": config.previous,
            "checksum": config.checksum,
        },
    }


def verify_and_move(
    config: JobConfig, temp_dir: str, seconds: float, metrics, record: dict | None = None
) -> JobSummary:
    """Checks the shards against the matched count, then moves them (and the run's
    manifest, from ``record``) to ``--output``; returns the run's summary."""
    manifest_path = FileSystems.join(temp_dir, MANIFEST_FILE)
    if not FileSystems.exists(manifest_path):
        raise ClassifyJobError(f"the pipeline finished without writing {manifest_path}")
    with FileSystems.open(manifest_path) as handle:
        manifest = json.loads(handle.read().decode("utf-8"))
    matched = int(manifest["matched"])
    if matched == 0:  # an empty input: the header only (run_job warns)
        sources, written, failed = header_only_shards(temp_dir, config.num_shards), 0, 0
    else:
        shards = check_shards(temp_dir, manifest)  # the writers' counts; sizes from one listing
        sources, written, failed = shards.paths, shards.rows, shards.errors
    finals = output_paths(config.output, len(sources))
    if written != matched:
        raise ClassifyJobError(
            f"{matched} image files matched but {written} rows were written: "
            f"{abs(matched - written)} rows {'missing' if written < matched else 'extra'}; "
            f"nothing written to {config.output}"
        )
    summary = JobSummary(matched, written, failed, finals, seconds, metrics)
    summary.skipped = dict(sorted(manifest.get("skipped", {}).items()))
    summary.engines = engines_used(metrics)
    if record is not None and not summary.engines:  # a runner that reports no counters
        with console.native_stderr_captured():  # TensorFlow's start-up lines (GPU look-up)
            metadata = read_metadata(config.model)
            record["settings"]["engine_on_this_machine"] = engines.resolve_engine(
                config.precision, metadata
            )
    if record is not None:
        content = manifest_content(
            **record,
            engines=summary.engines,
            counts={
                "matched": matched,
                "written": written,
                "failed": failed,
                "skipped": summary.skipped,
                "seconds": round(seconds, 3),
                "counters": metrics,
            },
            outputs=finals,
        )
        sources = [*sources, stage_manifest(temp_dir, content)]
        finals = [*finals, run_manifest_path(config.output)]
    stale = [path for path in previous_outputs(config.output) if path not in finals]
    FileSystems.rename(sources, finals)
    if stale:  # an earlier run's shards (another --num_shards): not part of this output
        FileSystems.delete(stale)
    return summary
