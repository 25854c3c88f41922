"""Classify image folders in bulk with Apache Beam: one CSV row per image file.

    python -m beam_jobs.classify_images --input DIR_OR_GLOB [DIR_OR_GLOB ...] \\
        [--file-list LIST.txt|LIST.csv ...] --model BUNDLE --output results.csv \\
        [--previous OLD.csv [--checksum]] [--progress-interval S] \\
        [--num-shards N] [--top-k K] [--min-score S|bundle] \\
        [--mode auto|whole|single] [--precision auto|off|bfloat16|int8] \\
        [--max-error-fraction F] [--batch-size B] [--max-pixels P] [--max-bytes B] [-v] \\
        [Beam pipeline options...]

Every option of ours takes both spellings (``--num-shards`` = ``--num_shards``); the
ones ``logo-batch predict`` and ``evaluate`` have too are defined once, in
:mod:`logo_batch.options`, and checked as the command line is parsed. An option that
is neither ours nor a Beam pipeline option is an error.

The pipeline (:func:`beam_jobs.job.build_pipeline`), as named composable PTransforms
(the layout of Beam's inference examples)::

    MatchInputs          per --input, MatchImageFiles: local
                         plan_local_listing (units of <= 10,000 files,
                         no names), Reshuffle, list_unit_entries on the
                         workers (follows symlinked folders, reports
                         unreadable folders, broken links); remote
                         fileio.MatchFiles, image extensions;
                         per --file-list, ReadFileList (streamed);
                         several inputs or a list: OneEntryPerFile
                         (GroupByKey by path: stat, duplicates once);
                         paths escaped (escape_path)              -> FileEntry
                                                     (path, error, size, modified)
    CountMatchedFiles    CountGlobally (per bundle, then summed)   -> N
    ReusePrevious        (--previous) CoGroupByKey by path with the
                         earlier output's rows (read by the workers):
                         unchanged rows carried, the rest classified
                                                  -> FileEntry to classify, rows
    GroupIntoBatches     consecutive entries into batches of B where
                         they are, each packed as one bytes object;
                         Reshuffle (spread over the workers)
                                                             -> tuples of entries
    DecodeImageBatches   read + preprocess_image_file per file (single
                         mode) or whole_photo.load_photo_stack, a
                         14-window stack (whole mode)               -> DecodedBatch
    ClassifyBatches      RunInference(KeyedModelHandler(TFModelHandlerTensor(
                         model.keras)).with_no_batching()), keyed by
                         the file's FileEntry (its facts travel along);
                         whole mode: the windows of a batch's photos
                         scored together (whole_photo.score_window_stacks);
                         files that failed to decode pass through as
                         FailedInput examples -> error predictions
                                                   -> (FileEntry, Prediction)
    FormatRows           Prediction.to_row() + size, modified,
                         fingerprint, metrics                      -> CSV rows
    WriteCsvShards       auto / 1 (WriteBundleShards): written where
                         they are, no shuffle of rows: files of at
                         most rows_per_shard rows, each sorted by path
                         (bounded memory: sorted_csv), part-filled
                         last files packed and merged; --num_shards 1:
                         all merged into one file by one worker;
                         the rows carried from --previous written
                         by their own writers.  --num_shards N: key
                         crc32(path) % N, GroupByKey, one sorted CSV
                         per shard; all in a temporary folder
                                                            -> ShardWritten
    WriteManifest        matched count + rows written per shard    -> manifest.json

Modules: see ``docs/architecture.md`` (one job each: inputs and listing, batching and
decoding, the model handler, rows, shard writers, manifest, output location, runners).

Before the pipeline starts the driver checks ``--input`` (a folder is a folder even
with ``[`` or ``*`` in its name; only an input that is not a folder globs), the
output location (not a folder, writable) and the model file (a complete ``.keras``
archive), and removes the temporary folders that killed runs of the same output
left behind. It then checks, from the counts the shard writers recorded in the
manifest (never by reading the rows again) and each shard's size on storage, that each
matched file has exactly one row, and only then moves the CSV file(s) to
``--output``, removing the shards an earlier run with another ``--num_shards`` wrote
there. Any failure leaves nothing new
at the output path.

Why the batching is done by hand: see :mod:`beam_jobs.batching`.

Rows are built by :mod:`logo_batch.inference.predict` from inputs made by
:func:`logo_batch.inference.preprocessing.preprocess_image_file`, exactly as
``logo-batch predict`` does, so both give the same labels and scores.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence

from logo_batch import console

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# The job's modules load TensorFlow, Keras and Beam, whose start-up lines (CUDA stubs,
# CPU features, optional cloud clients not installed) are noise for a command-line job:
# captured here and kept in STARTUP_LOG, which --verbose prints.
with console.native_stderr_captured() as _startup:
    from beam_jobs.beam_options import unknown_beam_options, unknown_option_message
    from beam_jobs.errors import ClassifyJobError
    from beam_jobs.inputs import describe_inputs, resolve_inputs
    from beam_jobs.job import JobConfig, run_job
    from beam_jobs.shards import AUTO_SHARDS, ROWS_PER_SHARD, parse_num_shards
    from logo_batch.arguments import add_option, matching_args, number_in, whole_number
    from logo_batch.options import (
        BATCH_SIZE,
        MAX_BYTES,
        MAX_PIXELS,
        MIN_SCORE,
        MODE,
        PRECISION,
        TOP_K,
    )
STARTUP_LOG: str = _startup.text

ACCEPTS_EXTRA_ARGS = True  # Beam pipeline options pass through `logo-batch classify`.


def _num_shards(text: str) -> int:
    try:
        return parse_num_shards(text)
    except ValueError:
        message = f"must be auto or a whole number >= 1, not {text!r}"
        raise argparse.ArgumentTypeError(message) from None


def configure_parser(parser: argparse.ArgumentParser) -> None:
    """Our options, each in both spellings (``--num-shards`` = ``--num_shards``); the
    ones ``predict`` and ``evaluate`` have too are theirs (:mod:`logo_batch.options`)."""
    add_option(
        parser,
        "--input",
        nargs="+",
        action="extend",
        default=[],
        metavar="FOLDER_OR_GLOB",
        help="image folder(s) (recursive) or glob(s); several are one run",
    )
    add_option(
        parser,
        "--file-list",
        nargs="+",
        action="extend",
        default=[],
        metavar="LIST",
        help="text file(s) of paths, one a line, or CSV file(s) (*.csv: the path column, "
        "else the first); relative paths are relative to the list's folder",
    )
    add_option(parser, "--model", required=True, help="model bundle folder")
    add_option(parser, "--output", required=True, help="CSV file to write")
    add_option(
        parser,
        "--num-shards",
        type=_num_shards,
        default=AUTO_SHARDS,
        metavar="N",
        help="CSV files to write, each with a header and sorted by path; auto (default): "
        "one per --rows-per-shard rows; 1: one file (merged from the shards by one worker)",
    )
    add_option(
        parser,
        "--rows-per-shard",
        type=whole_number(1),
        default=ROWS_PER_SHARD,
        metavar="R",
        help=f"rows per CSV file with --num-shards auto (default {ROWS_PER_SHARD})",
    )
    for option in (TOP_K, MIN_SCORE, MODE, PRECISION):
        option.add_to(parser)
    add_option(
        parser,
        "--previous",
        metavar="OLD_CSV",
        help="an earlier output of this job: files unchanged since (same size and "
        "modified time) with the same model and settings keep their rows, unclassified",
    )
    add_option(
        parser,
        "--checksum",
        action="store_true",
        help="with --previous: a file keeps its row only when its content is the same "
        "(SHA-256 of its bytes, as rsync --checksum; each row records its file's hash), "
        "not only its size and modified time; reads every file whose size matches",
    )
    add_option(
        parser,
        "--progress-interval",
        type=number_in(0.0),
        default=30.0,
        metavar="S",
        help="print a progress line every S seconds (0: never)",
    )
    add_option(
        parser,
        "--max-error-fraction",
        type=number_in(0.0, 1.0),
        default=1.0,
        metavar="F",
        help="fail (after writing the CSV) when more files than this fraction fail",
    )
    for option in (BATCH_SIZE, MAX_PIXELS, MAX_BYTES):
        option.add_to(parser)
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
    return list(parser._option_string_actions)  # noqa: SLF001  (both spellings)


def _configure_logging(verbose: bool) -> None:
    level = logging.INFO if verbose else logging.WARNING
    logging.basicConfig(level=level)  # no-op when the root logger has handlers
    logging.getLogger().setLevel(level)
    if verbose:
        sys.stderr.write(STARTUP_LOG)  # TensorFlow's and Beam's import lines
    else:
        logging.getLogger().addFilter(_without_memory_warning)


def _without_memory_warning(record: logging.LogRecord) -> bool:
    """Drops the warning RunInference logs at each model load when Beam's optional
    ``model_manager`` (it needs PyTorch) does not import: Beam then also sets
    ``resource`` to None and cannot read the memory it would only log."""
    return not record.getMessage().startswith("Resource module is not available")


def _report(line: str) -> None:
    """Progress lines and notes: one line each, on stderr (stdout keeps the results)."""
    print(line, file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    verbose = bool(getattr(args, "verbose", False)) or console.is_verbose()
    extra = list(getattr(args, "extra_args", []))
    unknown = unknown_beam_options(extra)
    if unknown:
        message = unknown_option_message(unknown, _our_options(), extra)
        print(f"classify: error: {message}", file=sys.stderr)
        return 2
    if not getattr(args, "input", None) and not getattr(args, "file_list", None):
        print("classify: error: give --input and/or --file-list", file=sys.stderr)
        return 2
    _configure_logging(verbose)
    config = JobConfig(**matching_args(JobConfig, args))
    try:
        inputs = describe_inputs(resolve_inputs(config.input, config.file_list))
        print(f"classify: {inputs} with model {config.model} -> {config.output}")
        sys.stdout.flush()
        summary = run_job(config, extra, quiet=not verbose, report=_report)
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

    classify_images.STARTUP_LOG = STARTUP_LOG  # this copy loaded the job's modules
    sys.exit(classify_images.main())
