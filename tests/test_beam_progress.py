"""Progress of a running job: the counts the DoFns write, the lines the driver prints
(with a fake clock: nothing here waits or measures time)."""

from __future__ import annotations

import contextlib
import tempfile
from pathlib import Path

import pytest
from beam_support import IN_PROCESS, make_bundle
from image_files import noise_jpeg, truncated_jpeg

from beam_jobs import job, progress
from beam_jobs.progress import Counts, ProgressCounter, ProgressPrinter


class FakeClock:
    def __init__(self, now: float = 1000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_lines_say_done_of_matched_rate_and_time_left():
    clock, lines = FakeClock(), []
    counts = Counts(listed=40)
    printer = ProgressPrinter(lambda: counts, lines.append, 30, clock)
    clock.now += 30
    printer.tick()
    counts = Counts(listed=100, matched=100, to_classify=70, reused=30)
    clock.now += 30
    printer.tick()
    counts.done = 20
    clock.now += 30  # 90 s in: the first files done
    printer.tick()
    counts.done = 50
    clock.now += 60  # 30 more in 60 s
    printer.tick()
    assert lines == [
        "classify progress: listing, 40 files so far (30 s)",
        "classify progress: 30 of 100 files (30.0%), 30 reused, starting (1 min 0 s)",
        # 20 files in 90 s; 50 left
        "classify progress: 50 of 100 files (50.0%), 30 reused, 0.2 files/s, about 3 min 45 s left",
        # 30 files in the last 60 s; 20 left
        "classify progress: 80 of 100 files (80.0%), 30 reused, 0.5 files/s, about 40 s left",
    ]


def test_lines_from_a_runners_counters_before_the_totals_are_known():
    clock, lines = FakeClock(), []
    metrics = {"files_matched": 5000, "images_classified": 90, "images_failed": 10}
    printer = ProgressPrinter(lambda: progress.metrics_counts(metrics), lines.append, 30, clock)
    clock.now += 7200
    line = printer.tick()
    assert line == "classify progress: 100 files done, 5000 matched so far, 0.0 files/s"
    assert progress.metrics_counts({}) is None  # a runner without counters: no line
    assert ProgressPrinter(lambda: None, lines.append, 30, clock).tick() is None
    assert len(lines) == 1
    assert progress.duration(7325) == "2 h 2 min" and progress.duration(59.6) == "1 min 0 s"


def test_the_printer_prints_every_interval_until_stopped():
    class Stop:
        """Event.wait that records the interval asked and says "stopped" on the 4th call."""

        def __init__(self):
            self.waits = []

        def wait(self, seconds):
            self.waits.append(seconds)
            return len(self.waits) == 4

    lines, stop = [], Stop()
    ProgressPrinter(lambda: Counts(listed=3), lines.append, 12.5, FakeClock()).run(stop)
    assert stop.waits == [12.5] * 4 and len(lines) == 3

    def failing():
        raise OSError("gone")

    stop = Stop()
    ProgressPrinter(failing, lines.append, 1, FakeClock()).run(stop)  # ends, never raises
    assert stop.waits == [1] and len(lines) == 3


def test_no_printer_without_a_report_or_an_interval():
    for source, report, interval in [(None, print, 30), (Counts, None, 30), (Counts, print, 0)]:
        with progress.printing_progress(source, report, interval) as printer:
            assert printer is None


def test_counters_in_files_sum_across_processes(tmp_path):
    first, second = ProgressCounter(str(tmp_path), "done"), ProgressCounter(str(tmp_path), "done")
    for _ in range(5):
        first.add()
    second.add(7)
    first.flush()
    second.flush()
    assert progress.folder_counts(str(tmp_path)) == Counts(done=12)
    # A copy in a worker process counts from zero into its own file.
    import pickle

    copy = pickle.loads(pickle.dumps(first))
    copy.add(2)
    copy.flush()
    progress._write_total(20, str(tmp_path), progress.MATCHED)
    progress._write_total(15, str(tmp_path), progress.TO_CLASSIFY)
    (tmp_path / ".done.1.x.partial").write_text("999")  # being written: not counted
    assert progress.folder_counts(str(tmp_path)) == Counts(
        done=14, matched=20, to_classify=15, reused=5
    )
    ProgressCounter(None, "done").add()  # no folder: nothing
    assert progress.folder_counts(str(tmp_path / "gone")) == Counts()


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.mark.parametrize("runner_args", [IN_PROCESS, ["--direct_num_workers", "2"]])
def test_a_real_run_counts_every_file(bundle, tmp_path, monkeypatch, runner_args):
    """The counts the job's DoFns wrote (in this process, or in 2 worker processes),
    read when the pipeline has finished, just before the progress folder goes."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(7):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    (folder / "bad.jpg").write_bytes(truncated_jpeg())
    seen: list[Counts] = []
    real = progress.printing_progress
    made = tmp_path / "progress"
    made.mkdir()
    folders = []

    def progress_folder():
        folders.append(tempfile.mkdtemp(dir=made))
        return folders[-1]

    monkeypatch.setattr(job, "progress_folder", progress_folder)

    @contextlib.contextmanager
    def recording(source, report, interval):
        with real(source, report, interval) as printer:
            yield printer
        if source is not None:
            seen.append(source())

    monkeypatch.setattr(job, "printing_progress", recording)
    config = job.JobConfig(
        input=str(folder), model=str(bundle), output=str(tmp_path / "o.csv"), batch_size=3,
        progress_interval=3600,  # the printer thread never ticks: the test reads the counts
    )  # fmt: skip
    summary = job.run_job(config, runner_args, report=lambda line: None)
    assert summary.written == 8
    assert seen == [Counts(listed=8, done=8, matched=8, to_classify=8, reused=0)]
    assert len(folders) == 1 and list(made.iterdir()) == []  # made, then removed
    if runner_args == IN_PROCESS:  # without a report: no progress folder, no counting
        job.run_job(config, runner_args)
        assert len(folders) == 1
