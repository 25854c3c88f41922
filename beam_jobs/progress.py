"""Progress of a running job: one short line at most every ``--progress_interval`` seconds.

Where the counts come from:

- **Local runs** (the job's own local runner runs the pipeline inside ``pipeline.run()``,
  so its Beam counters are only known at the end): the job's DoFns also count into small
  files of a local progress folder (:class:`ProgressCounter`: one file per DoFn
  instance, rewritten at most every :data:`FLUSH_SECONDS`), and a driver thread sums
  them (:func:`folder_counts`).
- **Runners that run the job remotely** (``pipeline.run()`` returns while it runs): the
  driver polls the result's Beam counters (:func:`metrics_counts`); a runner that does
  not report counters while running (Dask) prints no progress line. Those counters
  (namespace ``logo_batch``) are also what the runner's own UI shows.

:class:`ProgressPrinter` turns counts into lines (files done of matched, rate, time
left); its clock and interval are injected, so it is tested without waiting.
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import apache_beam as beam

FLUSH_SECONDS = 2.0
LISTED, DONE, MATCHED, TO_CLASSIFY = "listed", "done", "matched", "to_classify"
"""What the progress files count: files listed so far, rows made by classifying so far
(running counts); files matched, files to classify (totals, written once known)."""


def progress_folder() -> str:
    """A new local folder for one run's progress files (the driver removes it)."""
    return tempfile.mkdtemp(prefix="logo-batch-progress-")


class ProgressCounter:
    """A count kept in a file of ``folder`` named for this counter (no-op without a folder).

    The file holds the count in decimal and is replaced whole (never half-written);
    it is rewritten at most every :data:`FLUSH_SECONDS` and by :meth:`flush`.
    """

    def __init__(self, folder: str | None, kind: str):
        self.folder = folder
        self.kind = kind
        self._count = 0
        self._path: str | None = None
        self._written_at = 0.0

    def __getstate__(self):  # a copy in another process counts from zero, in its own file
        return {"folder": self.folder, "kind": self.kind}

    def __setstate__(self, state):
        self.__init__(state["folder"], state["kind"])

    def add(self, count: int = 1) -> None:
        if not self.folder:
            return
        self._count += count
        if time.monotonic() - self._written_at >= FLUSH_SECONDS:
            self.flush()

    def flush(self) -> None:
        if not self.folder:
            return
        if self._path is None:
            name = f"{self.kind}.{os.getpid()}.{uuid.uuid4().hex[:12]}"
            self._path = os.path.join(self.folder, name)
        folder, name = os.path.split(self._path)
        partial = os.path.join(folder, f".{name}.partial")
        try:
            with open(partial, "w", encoding="ascii") as handle:
                handle.write(str(self._count))
            os.replace(partial, self._path)
        except OSError:  # the folder is gone: the run is over
            pass
        self._written_at = time.monotonic()


class _CountFn(beam.DoFn):
    def __init__(self, folder: str, kind: str):
        self._counter = ProgressCounter(folder, kind)

    def process(self, element):
        self._counter.add()
        yield element

    def finish_bundle(self):
        self._counter.flush()


def _write_total(count: int, folder: str, kind: str) -> int:
    counter = ProgressCounter(folder, kind)
    counter.add(count)
    counter.flush()
    return count


class CountProgress(beam.PTransform):
    """Passes elements on and counts them into the progress folder as ``kind``.

    Without a folder (a remote runner) it is the identity.
    """

    def __init__(self, folder: str | None, kind: str = DONE):
        super().__init__()
        self._folder = folder
        self._kind = kind

    def expand(self, pcoll):
        if not self._folder:
            return pcoll
        return pcoll | "Count" >> beam.ParDo(_CountFn(self._folder, self._kind))


class RecordTotal(beam.PTransform):
    """Writes a one-element count (:class:`~beam_jobs.counts.CountGlobally`) to the
    progress folder as ``kind``."""

    def __init__(self, folder: str | None, kind: str):
        super().__init__()
        self._folder = folder
        self._kind = kind

    def expand(self, count):
        if not self._folder:
            return count
        return count | "Write" >> beam.Map(_write_total, self._folder, self._kind)


@dataclass
class Counts:
    """What a progress line reports; ``None``: not known yet."""

    listed: int = 0
    done: int = 0
    matched: int | None = None
    to_classify: int | None = None
    reused: int = 0


def folder_counts(folder: str) -> Counts:
    """The sums of the progress files in ``folder`` (unreadable ones count as absent)."""
    sums: dict[str, int] = {}
    try:
        names = os.listdir(folder)
    except OSError:
        names = []
    for name in names:
        if name.startswith("."):
            continue
        try:
            with open(os.path.join(folder, name), encoding="ascii") as handle:
                value = int(handle.read())
        except (OSError, ValueError):
            continue
        kind = name.split(".", 1)[0]
        sums[kind] = sums.get(kind, 0) + value
    counts = Counts(listed=sums.get(LISTED, 0), done=sums.get(DONE, 0))
    counts.matched = sums.get(MATCHED)
    counts.to_classify = sums.get(TO_CLASSIFY)
    if counts.matched is not None and counts.to_classify is not None:
        counts.reused = counts.matched - counts.to_classify
    return counts


def metrics_counts(metrics: dict[str, int]) -> Counts | None:
    """Counts from the job's Beam counters (``None`` when the runner reports none)."""
    if not metrics:
        return None
    done = metrics.get("images_classified", 0) + metrics.get("images_failed", 0)
    return Counts(
        listed=metrics.get("files_matched", 0), done=done, reused=metrics.get("files_reused", 0)
    )


def duration(seconds: float) -> str:
    """``42 s``, ``7 min 49 s``, ``2 h 5 min``."""
    seconds = max(0, round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


class ProgressPrinter:
    """Progress lines from ``source()`` (:class:`Counts`, or ``None``: nothing to say).

    The rate is of files classified by this run (reused ones are not), measured from
    the first line that saw one; the time left is the files still to classify at that
    rate.
    """

    def __init__(
        self,
        source: Callable[[], Counts | None],
        report: Callable[[str], None],
        interval: float,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._source = source
        self._report = report
        self.interval = interval
        self._clock = clock
        self._started = clock()
        self._first: tuple[float, int] | None = None  # (time, done) when done was first > 0

    def line(self, counts: Counts, now: float) -> str:
        elapsed = now - self._started
        if counts.matched is None and counts.done == 0:
            return f"classify progress: listing, {counts.listed} files so far ({duration(elapsed)})"
        rate = self._rate(counts.done, now)
        if counts.matched is not None:
            finished = counts.done + counts.reused
            share = finished / counts.matched if counts.matched else 1.0
            text = f"{finished} of {counts.matched} files ({share:.1%})"
        else:
            text = f"{counts.done + counts.reused} files done, {counts.listed} matched so far"
        if counts.reused:
            text += f", {counts.reused} reused"
        if rate is None:
            return f"classify progress: {text}, starting ({duration(elapsed)})"
        text += f", {rate:.1f} files/s"
        if counts.to_classify is not None and rate > 0:
            left = max(0, counts.to_classify - counts.done) / rate
            text += f", about {duration(left)} left"
        return f"classify progress: {text}"

    def _rate(self, done: int, now: float) -> float | None:
        if done <= 0:
            return None
        if self._first is None:
            self._first = (now, done)
        since, done_then = self._first
        if now > since and done > done_then:
            return (done - done_then) / (now - since)
        elapsed = now - self._started
        return done / elapsed if elapsed > 0 else None

    def tick(self) -> str | None:
        """Reports one line from the source's counts now; returns it (None: no counts)."""
        counts = self._source()
        if counts is None:
            return None
        line = self.line(counts, self._clock())
        self._report(line)
        return line

    def run(self, stop: threading.Event) -> None:
        """A line every ``interval`` seconds until ``stop`` is set (a source that fails
        ends the lines, never the job)."""
        while not stop.wait(self.interval):
            try:
                self.tick()
            except Exception:  # noqa: BLE001
                return


@contextlib.contextmanager
def printing_progress(
    source: Callable[[], Counts | None] | None,
    report: Callable[[str], None] | None,
    interval: float,
) -> Iterator[ProgressPrinter | None]:
    """Prints progress lines from a background thread while the ``with`` body runs
    (nothing without a source, a report function or a positive interval)."""
    if source is None or report is None or not interval or interval <= 0 or math.isinf(interval):
        yield None
        return
    printer = ProgressPrinter(source, report, interval)
    stop = threading.Event()
    thread = threading.Thread(target=printer.run, args=(stop,), daemon=True, name="progress")
    thread.start()
    try:
        yield printer
    finally:
        stop.set()
        thread.join()
