"""A whole report from a run's results: read once, sample, thumbnails, page, written
atomically (a temporary file beside the output, then renamed over it)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass

from logo_batch.report import html, reading, sampling
from logo_batch.report.thumbnails import THUMBNAIL_SIZE, make_thumbnails

DEFAULT_NAME = "report.html"


@dataclass(frozen=True)
class ReportOptions:
    """What a report shows (``logo-batch report``'s options)."""

    samples_per_brand: int = sampling.SAMPLES_PER_BRAND
    band_size: int = sampling.BAND_SIZE
    error_paths: int = sampling.ERROR_PATHS
    min_score: float | None = None  # the threshold; else the manifest's, else inferred
    manifest: str | None = None  # else STEM.manifest.json beside the results
    thumbnail_size: int = THUMBNAIL_SIZE
    title: str = ""


@dataclass(frozen=True)
class ReportWritten:
    """Where the report is and what went into it."""

    path: str
    files: tuple[str, ...]
    rows: int
    thumbnails: int


def default_output(results: Sequence[str]) -> str:
    """``STEM.report.html`` beside the first results name (``report.html`` for a glob)."""
    first = results[0]
    if any(c in first for c in "*?[") and not os.path.exists(first):
        return DEFAULT_NAME
    return os.path.splitext(first)[0] + ".report.html"


def check_output(output: str, inputs: Sequence[str]) -> None:
    """Refuses (:class:`ValueError`) an output that is one of the inputs, a folder, or
    an existing file that is not a report (no :data:`html.MARKER` at its start)."""
    target = os.path.realpath(output)
    for path in inputs:
        if os.path.realpath(path) == target:
            raise ValueError(f"--output {output} is one of the inputs ({path})")
    if os.path.isdir(output):
        raise ValueError(f"--output {output} is a folder")
    if os.path.lexists(output):
        try:
            with open(output, "rb") as handle:
                start = handle.read(4096)
        except OSError as error:
            raise ValueError(f"--output {output}: cannot read it ({error.strerror})") from None
        if html.MARKER.encode("utf-8") not in start:
            raise ValueError(
                f"--output {output} exists and is not a report this command wrote: "
                "not overwritten (remove it or choose another name)"
            )


def write_atomically(path: str, text: str) -> None:
    """``text`` to ``path`` through a temporary file beside it: a failure leaves the old
    file (or none), never half of a new one."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.tmp-", dir=folder)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.chmod(temporary, 0o644)
        os.replace(temporary, path)
    except BaseException:
        os.unlink(temporary)
        raise


def _threshold(
    options: ReportOptions, manifest: dict, lowest: float | None
) -> tuple[float | None, str]:
    """The threshold the band is drawn around, and where it comes from."""
    if options.min_score is not None:
        return options.min_score, "--min-score"
    from_manifest = reading.manifest_min_score(manifest)
    if from_manifest is not None:
        return from_manifest, "the manifest's settings.min_score"
    if lowest is not None:
        return lowest, "inferred: the lowest score of an accepted photo in whole mode"
    return None, "none: no --min-score, no manifest threshold, no accepted whole-mode photo"


def make_report(
    results: Sequence[str], output: str | None = None, options: ReportOptions = ReportOptions()
) -> ReportWritten:
    """Reads ``results`` (CSV names, shards found, or globs) once and writes the report
    to ``output`` (default :func:`default_output`). Raises :class:`FileNotFoundError`
    or :class:`ValueError` naming the file and the problem, before writing anything."""
    files = reading.result_files(results)
    manifest_file = options.manifest or reading.manifest_path(results)
    output = output or default_output(results)
    check_output(output, [*files, *([manifest_file] if manifest_file else [])])
    manifest, note = reading.read_manifest(manifest_file)
    threshold, source = _threshold(options, manifest, None)  # known before the rows?
    summary = sampling.summarize(
        reading.read_all(files),
        samples_per_brand=options.samples_per_brand,
        band_size=options.band_size,
        error_paths=options.error_paths,
        threshold=threshold,
    )
    if threshold is None:
        threshold, source = _threshold(options, manifest, summary.lowest_accepted_whole)
    sampled = summary.sampled_rows()
    thumbnails = make_thumbnails(((r.path, r.box) for r in sampled), options.thumbnail_size)
    page = html.Page(
        title=options.title or f"logo-batch report: {html.display_path(results[0])}",
        files=files,
        summary=summary,
        thumbnails=thumbnails,
        manifest=reading.flatten(manifest),
        manifest_note=note if not manifest_file else (note or f"read from {manifest_file}"),
        threshold=threshold,
        threshold_source=source,
        thumbnail_size=options.thumbnail_size,
    )
    write_atomically(output, html.render(page))
    return ReportWritten(output, tuple(files), summary.rows, len(thumbnails))
