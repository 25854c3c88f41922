"""Incremental runs (``--previous``): unchanged files keep their rows (the same bytes), new
and changed files are classified, earlier errors are retried, removed files drop out."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from beam_support import IN_PROCESS, make_bundle, read_csv
from image_files import gray_png, noise_jpeg, truncated_jpeg

from beam_jobs import job, previous
from beam_jobs.errors import ClassifyJobError
from beam_jobs.file_facts import FileEntry
from beam_jobs.fingerprint import job_fingerprint
from beam_jobs.summary import JobSummary
from logo_batch import cli
from logo_batch.inference.bundle import load_bundle
from logo_batch.inference.predict import predict_files
from logo_batch.result_csv import CSV_COLUMNS, ROW_COLUMNS

MTIME = 1_700_000_000  # every file's modification time: a change is the test's choice


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def _write(path: Path, data: bytes, mtime: int = MTIME) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    os.utime(path, (mtime, mtime))


def _lines_by_path(output: Path) -> dict[str, str]:
    """Each data line of a CSV written by the job, as bytes on disk, by its path."""
    text = output.read_bytes().decode("utf-8")
    header, *lines = text.split("\r\n")[:-1]
    assert header == ",".join(ROW_COLUMNS)
    return {line.split(",", 1)[0]: line for line in lines}


def _run(folder: Path, bundle: Path, output: Path, **config) -> JobSummary:
    config = job.JobConfig(
        input=str(folder), model=str(bundle), output=str(output), batch_size=2, **config
    )
    return job.run_job(config, IN_PROCESS)


@pytest.fixture
def first_run(bundle, tmp_path):
    """Eight good photos and one corrupt file, classified once."""
    folder = tmp_path / "photos"
    for i in range(8):
        _write(folder / f"p{i}.jpg", noise_jpeg(i))
    _write(folder / "bad.jpg", truncated_jpeg())
    output = tmp_path / "out" / "results.csv"
    summary = _run(folder, bundle, output)
    assert (summary.matched, summary.failed, summary.reused) == (9, 1, 0)
    return folder, output, _lines_by_path(output)


def test_only_new_changed_and_failed_files_are_classified(bundle, first_run):
    folder, output, before = first_run
    _write(folder / "new1.jpg", noise_jpeg(20))
    _write(folder / "sub" / "new2.png", gray_png(90))
    _write(folder / "p3.jpg", noise_jpeg(33), mtime=MTIME + 60)  # same name, new content
    _write(folder / "p5.jpg", (folder / "p5.jpg").read_bytes(), mtime=MTIME + 1)  # touched
    (folder / "p7.jpg").unlink()  # removed
    # The common use: the same file is the previous output and the new one.
    summary = _run(folder, bundle, output, previous=str(output))
    after = _lines_by_path(output)

    unchanged = [str(folder / f"p{i}.jpg") for i in (0, 1, 2, 4, 6)]
    for path in unchanged:  # carried over byte for byte
        assert after[path] == before[path]
    assert str(folder / "p7.jpg") not in after
    assert sorted(after) == sorted(
        unchanged
        + [str(folder / name) for name in ("new1.jpg", "sub/new2.png", "p3.jpg", "p5.jpg")]
        + [str(folder / "bad.jpg")]
    )
    # Decoded and scored: the 2 new files, the 2 changed ones, and bad.jpg (retried).
    assert summary.metrics["images_read"] == 4
    assert summary.metrics["images_failed_to_decode"] == 1
    assert summary.metrics["images_classified"] == 4
    assert summary.metrics["files_reused"] == 5
    assert (summary.matched, summary.written, summary.failed, summary.reused) == (10, 10, 1, 5)
    assert summary.classified == 4
    assert f"5 reused from {output} (2 new, 2 changed, 1 retried, 1 removed)" in summary.line()

    rows = read_csv(output).set_index("path")
    changed = rows.loc[str(folder / "p3.jpg")]
    info = os.stat(folder / "p3.jpg")
    assert changed["size"] == str(info.st_size)
    assert changed["modified"] == "2023-11-14T22:14:20.000000Z"  # MTIME + 60
    want = predict_files(load_bundle(bundle), [str(folder / "p3.jpg")])[0]
    assert changed["label"] == want.label and changed["top_labels"].split(";") == want.top_labels
    assert rows.loc[str(folder / "bad.jpg"), "error"] != ""

    # Nothing changed since: everything that classified is reused, the error retried.
    again = _run(folder, bundle, output, previous=str(output))
    assert (again.reused, again.classified, again.failed) == (9, 0, 1)
    assert again.metrics.get("images_read", 0) == 0
    assert _lines_by_path(output) == after


def test_sharded_previous_output_and_another_output_file(bundle, first_run, tmp_path):
    folder, output, before = first_run
    sharded = tmp_path / "sharded" / "labels.csv"
    summary = _run(folder, bundle, sharded, previous=str(output), num_shards=3)
    assert summary.reused == 8 and summary.classified == 0
    shards = sorted(sharded.parent.glob("labels-*-of-00003.csv"))
    assert len(shards) == 3
    carried = {}
    for shard in shards:
        carried.update(_lines_by_path(shard))
    assert carried == before  # the same lines, spread over the shards
    # The shards as --previous (named as their --output was): all reused again.
    again = _run(folder, bundle, tmp_path / "one.csv", previous=str(sharded))
    assert again.reused == 8 and _lines_by_path(tmp_path / "one.csv") == before


def test_incremental_run_on_the_dask_runner(bundle, first_run):
    """Dask reports no Beam counters: the reuse counts come from the pipeline's own file."""
    distributed = pytest.importorskip("dask.distributed")
    folder, output, before = first_run
    _write(folder / "new.jpg", noise_jpeg(50))
    (folder / "p0.jpg").unlink()
    config = job.JobConfig(
        input=str(folder), model=str(bundle), output=str(output), previous=str(output)
    )
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        args = ["--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address]
        summary = job.run_job(config, args)
    assert summary.metrics == {}
    assert (summary.matched, summary.reused, summary.classified, summary.failed) == (9, 7, 1, 1)
    assert (
        "7 reused" in summary.line()
        and "(1 new, 0 changed, 1 retried, 1 removed)" in summary.line()
    )
    after = _lines_by_path(output)
    for i in range(1, 8):
        assert after[str(folder / f"p{i}.jpg")] == before[str(folder / f"p{i}.jpg")]
    assert str(folder / "p0.jpg") not in after and after[str(folder / "new.jpg")]


def test_other_settings_reclassify_everything_and_say_why(bundle, first_run, tmp_path):
    folder, output, _ = first_run
    notes = []
    config = job.JobConfig(
        input=str(folder), model=str(bundle), output=str(tmp_path / "top2.csv"),
        previous=str(output), top_k=2,
    )  # fmt: skip
    summary = job.run_job(config, IN_PROCESS, report=notes.append)
    assert summary.reused == 0 and summary.classified == 8
    assert summary.metrics["images_read"] == 8
    assert len(notes) == 1 and "another model or other settings" in notes[0], notes
    assert "none reused from" in summary.line()
    other_model = make_bundle(tmp_path / "other", seed=5)
    summary = _run(folder, other_model, tmp_path / "other.csv", previous=str(output))
    assert summary.reused == 0 and summary.classified == 8


def test_output_of_another_version_is_not_reused(bundle, first_run, tmp_path):
    folder, _, _ = first_run
    old = tmp_path / "old.csv"
    old.write_text(",".join(CSV_COLUMNS) + "\n" + f"{folder / 'p0.jpg'},adidas,0.5,,,,,single\n")
    summary = _run(folder, bundle, tmp_path / "new.csv", previous=str(old))
    assert summary.reused == 0 and summary.classified == 8
    assert "has no size, modified, fingerprint, sha256 column(s)" in summary.reuse_note


def test_missing_previous_output_fails_before_any_work(bundle, first_run, tmp_path, capsys):
    folder, _, _ = first_run
    argv = ["classify", "--input", str(folder), "--model", str(bundle)]
    argv += ["--output", str(tmp_path / "x.csv"), "--previous", str(tmp_path / "none.csv")]
    assert cli.main([*argv, *IN_PROCESS]) == 1
    assert "--previous" in capsys.readouterr().err
    with pytest.raises(ClassifyJobError, match=r"none\.csv: no such output"):
        _run(folder, bundle, tmp_path / "x.csv", previous=str(tmp_path / "none.csv"))
    assert not (tmp_path / "x.csv").exists()


# ------------------------------------------------------------ the rules, one path at a time


def test_decide_rules():
    entry = FileEntry("/p/a.jpg", "", 10, "2024-01-01T00:00:00.000000Z")
    row = {name: "" for name in ROW_COLUMNS}
    row.update(path="/p/a.jpg", label="x", size="10", modified=entry.modified, fingerprint="f")
    assert previous.decide(entry, [row], "f") == (previous.REUSED, row)
    assert previous.decide(entry, [], "f") == (previous.NEW, entry)
    assert previous.decide(None, [row], "f") == (previous.REMOVED, None)
    assert previous.decide(entry, [row], "g")[0] == previous.CHANGED  # other settings
    assert previous.decide(entry._replace(size=11), [row], "f")[0] == previous.CHANGED
    assert previous.decide(entry._replace(modified="x"), [row], "f")[0] == previous.CHANGED
    assert previous.decide(entry, [{**row, "error": "corrupt"}], "f")[0] == previous.RETRIED
    broken = entry._replace(error="broken symbolic link (to x)")
    assert previous.decide(broken, [row], "f")[0] == previous.CHANGED
    assert previous.decide(entry, [{**row, None: ["extra"]}], "f")[0] == previous.CHANGED


def test_fingerprint_follows_model_and_settings(bundle, tmp_path):
    settings = dict(
        mode="single", grid=((1, 1.0),), top_k=5, min_score=None, max_pixels=10**8, precision="off"
    )
    base = job_fingerprint(str(bundle), **settings)
    assert base == job_fingerprint(str(bundle), **settings) and len(base) == 16
    changes = (
        dict(mode="whole"), dict(top_k=3), dict(min_score=0.5), dict(max_pixels=9),
        dict(precision="bfloat16"),
    )  # fmt: skip
    for change in changes:
        assert job_fingerprint(str(bundle), **{**settings, **change}) != base
    other = make_bundle(tmp_path / "other", seed=5)
    assert job_fingerprint(str(other), **settings) != base


def test_reuse_counts_from_the_file_else_the_counters(tmp_path):
    output = previous.PreviousOutput("old.csv", ("old.csv",))
    counts_path = str(tmp_path / previous.REUSE_COUNTS_FILE)
    metrics = {"files_reused": 4, "files_new": 1, "previous_rows_removed": 2}
    from_counters = previous.read_reuse_counts(counts_path, metrics)
    assert from_counters == {"reused": 4, "new": 1, "changed": 0, "retried": 0, "removed": 2}
    assert previous.read_reuse_counts(counts_path, {}) is None
    assert (
        previous.reuse_note(output, None) == "rows reused from old.csv: not reported by this runner"
    )
    previous._write_counts([("reused", 3), ("changed", 1)], counts_path)
    assert previous.read_reuse_counts(counts_path, metrics)["reused"] == 3  # the file first
    assert previous.reuse_note(output, previous.read_reuse_counts(counts_path, {})) == (
        "3 reused from old.csv (0 new, 1 changed, 0 retried, 0 removed)"
    )
