"""Every file of every input as one :class:`~beam_jobs.file_facts.FileEntry`: the job's
first PTransforms (each usable on its own).

    MatchInputs = MatchImageFiles per --input | ReadFileList per --file-list,
                  then OneEntryPerFile (several inputs, or a list)

A local ``--input`` folder is listed in two steps so that no process holds its whole
listing: :func:`~beam_jobs.listing.plan_local_listing` walks the folders (one worker)
and emits :class:`~beam_jobs.listing.ListingUnit` s of at most
:data:`~beam_jobs.listing.FILES_PER_UNIT` files each (a few folders, or a range of names
of a large one: no file names), the units are spread over the workers (``SpreadUnits``,
a Reshuffle; the job's Dask runner splits them by the files they name, about one a
partition), and each worker lists its units' files
(:func:`~beam_jobs.listing.list_unit_entries`, one stat a file). No DoFn has tagged
outputs (the Dask runner merges them into one collection): the files left out for their
extension are counted in a branch of their own (:class:`Matched`), so that the run's
manifest and summary count them whatever the runner reports of its counters.
"""

from __future__ import annotations

import collections
import os
import re
from collections.abc import Sequence
from typing import NamedTuple

import apache_beam as beam
from apache_beam.io import fileio
from apache_beam.metrics import Metrics

from beam_jobs.file_facts import FileEntry, metadata_entry
from beam_jobs.file_lists import listed_paths
from beam_jobs.inputs import FileListSpec, InputSpec, Spec, resolve_input
from beam_jobs.listing import FILES_PER_UNIT, ListingUnit, list_unit_entries, plan_local_listing
from beam_jobs.progress import LISTED, ProgressCounter
from beam_jobs.summary import METRICS_NAMESPACE
from logo_batch.inference.preprocessing import is_image_path

SKIPPED_COUNTER = "files_skipped"
"""Counter of the files left out for their extension (not an image we classify)."""
SKIPPED_EXTENSION_COUNTER = "skipped_ext_{}"
"""Counter of the files skipped with one extension (``skipped_ext_tiff``; ``none``: no
extension, ``other``: an odd one, or past :data:`MAX_SKIPPED_EXTENSIONS` of them)."""
MAX_SKIPPED_EXTENSIONS = 20
_EXTENSION = re.compile(r"\.([a-z0-9]{1,10})")


class Matched(NamedTuple):
    """What :class:`MatchImageFiles` and :class:`MatchInputs` give: the entries, and the
    files left out for their extension as ``(kind, count)`` pairs (kinds as
    :class:`SkippedFiles` names them; the run's manifest adds them up)."""

    entries: beam.PCollection
    skipped: beam.PCollection


class SkippedFiles:
    """Counts the files a listing leaves out, in all and by extension, as counters and
    in ``counts`` (at most :data:`MAX_SKIPPED_EXTENSIONS` kinds per listing: a folder
    of odd names cannot make a counter per file)."""

    def __init__(self):
        self.counts: collections.Counter[str] = collections.Counter()

    def __call__(self, path: str) -> str:
        """Counts the file ``path``; returns its kind."""
        Metrics.counter(METRICS_NAMESPACE, SKIPPED_COUNTER).inc()
        suffix = os.path.splitext(path)[1].lower()
        found = _EXTENSION.fullmatch(suffix)
        kind = found[1] if found else ("none" if not suffix else "other")
        if kind not in self.counts and len(self.counts) >= MAX_SKIPPED_EXTENSIONS:
            kind = "other"
        self.counts[kind] += 1
        Metrics.counter(METRICS_NAMESPACE, SKIPPED_EXTENSION_COUNTER.format(kind)).inc()
        return kind


class _PlanListingFn(beam.DoFn):
    def __init__(self, files_per_unit: int = FILES_PER_UNIT):
        self._files_per_unit = files_per_unit

    def process(self, spec: InputSpec):
        skipped = SkippedFiles()
        yield from plan_local_listing(
            spec.root, spec.pattern, self._files_per_unit, skipped=skipped
        )
        if skipped.counts:  # a unit of no files carries the counts
            yield ListingUnit((), 0, tuple(sorted(skipped.counts.items())))


def _skipped_of_unit(unit: ListingUnit) -> tuple[tuple[str, int], ...]:
    return ListingUnit(*unit).skipped


class _ListUnitFn(beam.DoFn):
    def __init__(self, pattern: str | None, progress_dir: str | None = None):
        self._pattern = pattern
        self._listed = ProgressCounter(progress_dir, LISTED)

    def process(self, unit: ListingUnit):
        for entry in list_unit_entries(unit, self._pattern):
            self._listed.add()
            yield entry

    def finish_bundle(self):
        self._listed.flush()


class _RemoteMatchFn(beam.DoFn):
    def __init__(self, progress_dir: str | None = None):
        self._listed = ProgressCounter(progress_dir, LISTED)

    def process(self, metadata):
        if is_image_path(metadata.path):
            self._listed.add()
            yield metadata_entry(metadata)

    def finish_bundle(self):
        self._listed.flush()


class _SkippedRemoteFn(beam.DoFn):
    def setup(self):
        self._skipped = SkippedFiles()

    def process(self, metadata):
        if not is_image_path(metadata.path):
            yield self._skipped(metadata.path), 1


class MatchImageFiles(beam.PTransform):
    """Every image file (by extension, any case) of an ``--input`` as a :class:`FileEntry`.

    ``path`` is escaped (:func:`~logo_batch.result_csv.escape_path`); ``error`` is "" for a
    file to read, or why the entry cannot be (an unreadable folder, a broken symbolic
    link): each entry becomes one CSV row. Local inputs are listed as
    :func:`~beam_jobs.listing.list_local_entries` lists them, in units of at most
    ``files_per_unit`` files spread over the workers
    (:func:`~beam_jobs.listing.plan_local_listing`, see the module's notes); remote ones
    by Beam's ``fileio.MatchFiles`` (one worker holds the match's metadata list). Both
    give each file's size and modification time. ``progress_dir``: count the files
    there (:mod:`beam_jobs.progress`). Gives :class:`Matched`.
    """

    def __init__(
        self,
        spec: InputSpec | str,
        progress_dir: str | None = None,
        files_per_unit: int = FILES_PER_UNIT,
    ):
        super().__init__()
        self._spec = spec if isinstance(spec, InputSpec) else resolve_input(spec)
        self._progress_dir = progress_dir
        self._files_per_unit = files_per_unit

    def expand(self, pbegin):  # a Matched (no annotation: Beam reads it as a type hint)
        if self._spec.local:
            units = (
                pbegin
                | "Input" >> beam.Create([self._spec])
                | "PlanListing" >> beam.ParDo(_PlanListingFn(self._files_per_unit))
                | "SpreadUnits" >> beam.Reshuffle()
            )
            return Matched(
                units
                | "ListUnits" >> beam.ParDo(_ListUnitFn(self._spec.pattern, self._progress_dir)),
                units | "SkippedByExtension" >> beam.FlatMap(_skipped_of_unit),
            )
        matches = pbegin | "MatchFiles" >> fileio.MatchFiles(self._spec.pattern)
        return Matched(
            matches | "KeepImages" >> beam.ParDo(_RemoteMatchFn(self._progress_dir)),
            matches | "SkippedByExtension" >> beam.ParDo(_SkippedRemoteFn()),
        )


class _ReadFileListFn(beam.DoFn):
    def __init__(self, progress_dir: str | None = None):
        self._listed = ProgressCounter(progress_dir, LISTED)

    def process(self, spec: FileListSpec):
        for listed in listed_paths(spec):
            self._listed.add()
            yield listed

    def finish_bundle(self):
        self._listed.flush()


class ReadFileList(beam.PTransform):
    """Every path a ``--file-list`` names as a :class:`~beam_jobs.file_lists.ListedPath`
    (not yet looked at: :class:`OneEntryPerFile` does that, spread over the workers).

    The list is read as a stream by one worker (:func:`~beam_jobs.file_lists.listed_paths`).
    """

    def __init__(self, spec: FileListSpec, progress_dir: str | None = None):
        super().__init__()
        self._spec = spec
        self._progress_dir = progress_dir

    def expand(self, pbegin):
        return (
            pbegin
            | "List" >> beam.Create([self._spec])
            | "ReadList" >> beam.ParDo(_ReadFileListFn(self._progress_dir))
        )


class _OneEntryFn(beam.DoFn):
    def __init__(self):
        self._duplicates = Metrics.counter(METRICS_NAMESPACE, "duplicate_entries")

    def process(self, keyed):
        _, found = keyed
        found = list(found)
        if len(found) > 1:
            self._duplicates.inc(len(found) - 1)
        listed = [item for item in found if isinstance(item, FileEntry)]
        if listed:  # found in a folder: its entry is already there
            yield min(listed, key=lambda entry: (bool(entry.error), entry.error))
        else:
            yield min(found, key=lambda item: item.list_path).entry()


class OneEntryPerFile(beam.PTransform):
    """One :class:`FileEntry` per path, whatever number of inputs or lists named it.

    A GroupByKey by path: paths named by lists are looked at here (one stat each, so
    spread over the workers), and a path found several times is classified once
    (counter ``duplicate_entries``).
    """

    def expand(self, found):
        return (
            found
            | "KeyByPath" >> beam.Map(lambda item: (item.path, item))
            | "GroupByPath" >> beam.GroupByKey()
            | "OneEntry" >> beam.ParDo(_OneEntryFn())
        )


class _CountEntriesFn(beam.DoFn):
    def __init__(self):
        self._matched = Metrics.counter(METRICS_NAMESPACE, "files_matched")
        self._errors = Metrics.counter(METRICS_NAMESPACE, "listing_errors")

    def process(self, entry: FileEntry):
        self._matched.inc()
        if entry.error:
            self._errors.inc()
        yield entry


class MatchInputs(beam.PTransform):
    """Every file of every input (``--input`` folders and globs, ``--file-list`` lists) as
    one :class:`FileEntry` per path (counters ``files_matched``, ``listing_errors``).

    One folder or glob is listed as it is; several inputs, or any list, go through
    :class:`OneEntryPerFile`. Gives :class:`Matched` (a file list skips no file: each
    path it names gets a row).
    """

    def __init__(self, specs: Sequence[Spec], progress_dir: str | None = None):
        super().__init__()
        self._specs = list(specs)
        self._progress_dir = progress_dir

    def expand(self, pbegin):  # a Matched (no annotation: Beam reads it as a type hint)
        found, skipped = [], []
        for index, spec in enumerate(self._specs):
            if isinstance(spec, InputSpec):
                matched = pbegin | f"MatchImageFiles{index}" >> MatchImageFiles(
                    spec, self._progress_dir
                )
                found.append(matched.entries)
                skipped.append(matched.skipped)
            else:
                found.append(
                    pbegin | f"ReadFileList{index}" >> ReadFileList(spec, self._progress_dir)
                )
        if len(found) == 1 and isinstance(self._specs[0], InputSpec):
            entries = found[0]
        else:
            entries = (
                tuple(found)
                | "AllInputs" >> beam.Flatten()
                | "OneEntryPerFile" >> OneEntryPerFile()
            )
        if len(skipped) == 1:
            skipped_all = skipped[0]
        elif skipped:
            skipped_all = tuple(skipped) | "AllSkipped" >> beam.Flatten()
        else:
            skipped_all = pbegin | "NoneSkipped" >> beam.Create([])
        return Matched(entries | "CountMatched" >> beam.ParDo(_CountEntriesFn()), skipped_all)
