"""The Beam job against hostile inputs: odd folder and file names, unreadable folders,
symlinks, bad outputs and models, killed runs, re-runs, option spellings, log noise."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from beam_support import CLASSES, IN_PROCESS, make_bundle, read_csv
from image_files import gray_png, noise_jpeg, permissions_enforced, truncated_jpeg

from beam_jobs import classify_images, job, listing
from beam_jobs.summary import JobSummary
from logo_batch import cli
from logo_batch.inference.bundle import BundleMetadata, save_bundle
from logo_batch.result_csv import path_bytes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def _run(folder, bundle, output, *extra, **config) -> JobSummary:
    config = job.JobConfig(input=str(folder), model=str(bundle), output=str(output), **config)
    return job.run_job(config, [*IN_PROCESS, *extra])


def _no_pipeline(monkeypatch):
    """Makes building the pipeline fail: a check must stop the job before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was built although the job should have stopped")

    monkeypatch.setattr(job, "build_pipeline", refuse)


# ------------------------------------------------------------ 1. glob characters


def test_folder_with_glob_characters_is_a_folder(bundle, tmp_path):
    folder = tmp_path / "photos[2019]"
    (folder / "sub*").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(noise_jpeg(1))
    (folder / "sub*" / "b?.png").write_bytes(gray_png())
    (tmp_path / "photos2").mkdir()  # what `photos[2019]` would match as a glob
    (tmp_path / "photos2" / "other.jpg").write_bytes(noise_jpeg(2))
    summary = _run(folder, bundle, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert sorted(rows.path) == [str(folder / "a.jpg"), str(folder / "sub*" / "b?.png")]
    assert summary.failed == 0


def test_explicit_glob_still_globs(bundle, tmp_path):
    for name in ("photos1", "photos2", "other"):
        (tmp_path / "in" / name).mkdir(parents=True)
        (tmp_path / "in" / name / "x.jpg").write_bytes(noise_jpeg(len(name)))
        (tmp_path / "in" / name / "y.png").write_bytes(gray_png())
    _run(f"{tmp_path}/in/photos[12]/*.jpg", bundle, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert list(rows.path) == [f"{tmp_path}/in/photos{i}/x.jpg" for i in (1, 2)]


# ------------------------------------------------------- 2. unreadable subfolders


def test_listing_reports_a_folder_it_cannot_read(tmp_path, monkeypatch):
    """As root permissions are not enforced: os.scandir refuses one folder instead."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.jpg").write_bytes(b"x")
    (tmp_path / "locked" / "inner").mkdir(parents=True)
    (tmp_path / "locked" / "b.jpg").write_bytes(b"x")
    real_scandir = os.scandir

    def scandir(path="."):
        if os.fspath(path) == str(tmp_path / "locked"):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    listed = sorted(
        (entry.path, entry.error) for entry in listing.list_local_entries(str(tmp_path))
    )
    assert listed == [
        (str(tmp_path / "locked"), "cannot read folder: Permission denied"),
        (str(tmp_path / "ok" / "a.jpg"), ""),
    ]


def test_unreadable_subfolder_gets_an_error_row(bundle, tmp_path):
    folder = tmp_path / "in"
    (folder / "locked").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(noise_jpeg(1))
    (folder / "locked" / "b.jpg").write_bytes(noise_jpeg(2))
    (folder / "locked").chmod(0)
    try:
        if not permissions_enforced(folder / "locked" / "b.jpg"):
            pytest.skip("running as root: folder permissions are not enforced")
        summary = _run(folder, bundle, tmp_path / "out.csv")
    finally:
        (folder / "locked").chmod(0o755)
    rows = read_csv(tmp_path / "out.csv").set_index("path")
    assert rows.loc[str(folder / "locked"), "error"] == "cannot read folder: Permission denied"
    assert rows.loc[str(folder / "a.jpg"), "error"] == ""
    assert summary.failed == 1


# ------------------------------------------------------------ 3. non-UTF-8 names


def test_file_name_that_is_not_utf8_becomes_a_row(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    raw = os.fsencode(folder)
    with open(raw + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(noise_jpeg(1))
    with open(raw + b"/bad\xff\xfe.jpg", "wb") as handle:
        handle.write(truncated_jpeg())
    (folder / "back\\slash.jpg").write_bytes(noise_jpeg(2))
    summary = _run(folder, bundle, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv").set_index("path")
    cafe, bad, slash = (
        f"{folder}/caf\\xe9.jpg",
        f"{folder}/bad\\xff\\xfe.jpg",
        f"{folder}/back\\\\slash.jpg",
    )
    assert sorted(rows.index) == sorted([cafe, bad, slash])
    assert rows.loc[cafe, "error"] == "" and rows.loc[cafe, "label"] in CLASSES
    assert "corrupt or truncated" in rows.loc[bad, "error"]  # the file was read
    assert rows.loc[slash, "error"] == ""
    # Lossless: the documented unescaping gives the original bytes back.
    assert path_bytes(cafe) == raw + b"/caf\xe9.jpg"
    assert path_bytes(bad) == raw + b"/bad\xff\xfe.jpg"
    assert path_bytes(slash) == raw + b"/back\\slash.jpg"
    assert (summary.matched, summary.failed) == (3, 1)


# -------------------------------------------------------------------- 4. symlinks


def test_symlinked_folders_are_followed_without_loops(bundle, tmp_path):
    folder, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    (folder / "sub").mkdir(parents=True)
    elsewhere.mkdir()
    (folder / "a.jpg").write_bytes(noise_jpeg(1))
    (elsewhere / "far.jpg").write_bytes(noise_jpeg(2))
    (folder / "linked").symlink_to(elsewhere, target_is_directory=True)
    (folder / "sub" / "up").symlink_to(folder, target_is_directory=True)  # a loop
    (folder / "sub" / "self").symlink_to(".", target_is_directory=True)  # another
    (folder / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    (folder / "gone_folder").symlink_to(tmp_path / "nowhere", target_is_directory=True)
    (folder / "b.jpg").symlink_to(elsewhere / "far.jpg")  # a link to a file: read through
    summary = _run(folder, bundle, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv").set_index("path")
    assert sorted(rows.index) == sorted(
        str(folder / name) for name in ("a.jpg", "b.jpg", "linked/far.jpg", "gone.jpg")
    )
    assert rows.loc[str(folder / "gone.jpg"), "error"] == (
        f"broken symbolic link (to {tmp_path / 'nowhere.jpg'})"
    )
    assert rows.loc[str(folder / "b.jpg"), "label"] in CLASSES
    assert rows.loc[str(folder / "linked/far.jpg"), "label"] in CLASSES
    assert (summary.matched, summary.failed) == (4, 1)


# -------------------------------------------------------------- 5. output checks


def test_output_that_is_a_folder_fails_before_the_pipeline(bundle, tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(noise_jpeg(1))
    (tmp_path / "results.csv").mkdir()
    _no_pipeline(monkeypatch)
    with pytest.raises(job.ClassifyJobError, match=f"{tmp_path / 'results.csv'}: .*is a folder"):
        _run(tmp_path / "in", bundle, tmp_path / "results.csv")
    assert sorted(tmp_path.iterdir()) == [tmp_path / "in", tmp_path / "results.csv"]


def test_output_under_a_file_fails_before_the_pipeline(bundle, tmp_path, monkeypatch, capsys):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(noise_jpeg(1))
    (tmp_path / "plain").write_text("a file, not a folder")
    _no_pipeline(monkeypatch)
    output = tmp_path / "plain" / "out" / "r.csv"
    argv = ["classify", "--input", str(tmp_path / "in"), "--model", str(bundle)]
    assert cli.main([*argv, "--output", str(output), *IN_PROCESS]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {output}" in err and str(tmp_path / "plain") in err


def test_output_in_a_folder_without_write_permission(bundle, tmp_path, monkeypatch):
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(noise_jpeg(1))
    (tmp_path / "ro").mkdir()
    _no_pipeline(monkeypatch)
    # As root the mode bits do not stop writing: os.access is what the check asks.
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: os.fspath(path) != str(tmp_path / "ro")
    )
    with pytest.raises(job.ClassifyJobError, match=f"{tmp_path / 'ro'}: no permission to write"):
        _run(tmp_path / "in", bundle, tmp_path / "ro" / "r.csv")


# -------------------------------------------------------------- 6. corrupt model


def test_truncated_model_file_is_reported_as_corrupt(bundle, tmp_path, monkeypatch):
    broken = tmp_path / "broken"
    broken.mkdir()
    for name in os.listdir(bundle):
        data = (bundle / name).read_bytes()
        (broken / name).write_bytes(data[: len(data) // 2] if name == "model.keras" else data)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(noise_jpeg(1))
    _no_pipeline(monkeypatch)
    with pytest.raises(job.ClassifyJobError) as caught:
        _run(tmp_path / "in", broken, tmp_path / "out.csv")
    message = str(caught.value)
    assert str(broken / "model.keras") in message
    assert "corrupt" in message and "not found" not in message.lower()
    (broken / "model.keras").unlink()
    with pytest.raises(job.ClassifyJobError, match=f"{broken / 'model.keras'}: no such file"):
        _run(tmp_path / "in", broken, tmp_path / "out.csv")


# ------------------------------------------------------- 7. bundle permissions


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750)])
def test_bundle_folder_respects_the_umask(tmp_path, umask, mode):
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    metadata = BundleMetadata(class_names=["a", "b"], image_size=4, backbone="tiny")
    old = os.umask(umask)
    try:
        path = save_bundle(model, metadata, tmp_path / "bundle", export_serving=False)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == mode


# --------------------------------------------------- 8. killed runs and workers


def _temp_folders(output: Path) -> list[Path]:
    return sorted(output.parent.glob(f".{output.name}.tmp-*"))


def _wait_for(condition, timeout: float, what: str):
    """Polls ``condition`` until it returns something true; fails after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


def _running(processes: list[psutil.Process]) -> list[psutil.Process]:
    """The processes that have not exited (a zombie has exited)."""
    running = []
    for process in processes:
        try:
            if process.status() != psutil.STATUS_ZOMBIE:
                running.append(process)
        except psutil.NoSuchProcess:
            pass
    return running


def test_killed_run_leaves_no_worker_and_the_next_run_cleans_up(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    output = tmp_path / "out" / "results.csv"
    command = [
        sys.executable, "-m", "beam_jobs.classify_images", "--input", str(folder),
        "--model", str(bundle), "--output", str(output), "--direct_num_workers", "2",
    ]  # fmt: skip
    driver = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process = psutil.Process(driver.pid)

        def sdk_workers():
            found = []
            for child in process.children(recursive=True):
                try:
                    if "sdk_worker" in " ".join(child.cmdline()):
                        found.append(child)
                except psutil.NoSuchProcess:
                    pass
            return found if len(found) == 2 else None

        _wait_for(lambda: _temp_folders(output), 120, "the run's temporary folder")
        workers = _wait_for(sdk_workers, 120, "2 SDK worker processes")
        driver.send_signal(signal.SIGKILL)
        driver.wait(timeout=30)
        # An exited worker may stay a zombie until whoever adopts it reaps it (in a
        # container, PID 1 may never do): exited, not alive.
        _wait_for(lambda: not _running(workers), 120, "the workers to exit with their driver")
    finally:
        if driver.poll() is None:
            driver.kill()
            driver.wait()
    stale = _temp_folders(output)
    assert len(stale) == 1 and str(driver.pid) in stale[0].name
    # A live run's temporary folder (this process) must survive the next run.
    live = output.parent / f".{output.name}.tmp-{socket.gethostname()}-{os.getpid()}-0123456789ab"
    live.mkdir()
    summary = _run(folder, bundle, output)
    assert summary.written == 6 and output.is_file()
    assert _temp_folders(output) == [live]


_BUSY_WORKER = """
import sys, threading
from beam_jobs.sdk_worker import exit_with_driver
exit_with_driver(int(sys.argv[1]))
print("armed", flush=True)
threading.Event().wait()  # busy for ever, as a worker in the middle of a long bundle
"""


def test_a_busy_worker_exits_when_its_driver_dies():
    """The worker entry point's watchdog, for a worker that would not stop by itself."""
    driver = subprocess.Popen(
        [sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE
    )
    worker = subprocess.Popen(
        [sys.executable, "-c", _BUSY_WORKER, str(driver.pid)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert worker.stdout.readline().strip() == "armed"
        assert worker.poll() is None
        driver.stdin.close()  # the driver exits
        driver.wait(timeout=30)
        assert worker.wait(timeout=30) == 70
    finally:
        for process in (driver, worker):
            if process.poll() is None:
                process.kill()
                process.wait()


def test_only_dead_runs_temp_folders_are_removed(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
    dead_pid, host = int(finished.stdout), socket.gethostname()
    output = tmp_path / "r.csv"
    dead = tmp_path / f".r.csv.tmp-{host}-{dead_pid}-00000000abcd"
    alive = tmp_path / f".r.csv.tmp-{host}-{os.getpid()}-00000000abcd"
    other_host = tmp_path / f".r.csv.tmp-elsewhere.example-{dead_pid}-00000000abcd"
    other_output = tmp_path / f".s.csv.tmp-{host}-{dead_pid}-00000000abcd"
    for folder in (dead, alive, other_host, other_output):
        folder.mkdir()
        (folder / "shard-00000-of-00001.csv").write_text("path\n")
    removed = job.remove_stale_temp_folders(str(output))
    assert removed == [str(dead)]
    assert sorted(tmp_path.iterdir()) == sorted([alive, other_host, other_output])


# ------------------------------------------------------- 9. shards of a re-run


def test_rerun_with_fewer_shards_removes_the_old_shards(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(5):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    out = tmp_path / "out"
    out.mkdir()
    keep = [out / "labels-notes.csv", out / "other-00000-of-00003.csv", out / "labels-x-of-y.csv"]
    for path in keep:
        path.write_text("not ours\n")
    _run(folder, bundle, out / "labels.csv", num_shards=3)
    keep.append(out / "labels.manifest.json")  # the run's manifest, rewritten by each run
    three = [out / f"labels-{i:05d}-of-00003.csv" for i in range(3)]
    assert sorted(out.iterdir()) == sorted(keep + three)
    # A failed run leaves the earlier output as it was.
    (tmp_path / "empty").mkdir()
    with pytest.raises(job.ClassifyJobError, match="no image files matched"):
        _run(tmp_path / "empty", bundle, out / "labels.csv", num_shards=2)
    assert sorted(out.iterdir()) == sorted(keep + three)
    _run(folder, bundle, out / "labels.csv", num_shards=2)
    two = [out / f"labels-{i:05d}-of-00002.csv" for i in range(2)]
    assert sorted(out.iterdir()) == sorted(keep + two)
    _run(folder, bundle, out / "labels.csv")
    assert sorted(out.iterdir()) == sorted([*keep, out / "labels.csv"])


# -------------------------------------------------------- 10. option spellings


def test_options_accept_dash_and_underscore_spellings(bundle, tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    out = tmp_path / "out"
    argv = ["--input", str(folder), "--model", str(bundle)]
    argv += ["--num-shards", "2", "--top-k", "2", "--batch-size", "2", "--max-error-fraction", "0"]
    assert cli.main(["classify", *argv, "--output", str(out / "a.csv"), *IN_PROCESS]) == 0
    rows = [read_csv(out / f"a-{i:05d}-of-00002.csv") for i in range(2)]
    assert sum(len(r) for r in rows) == 3
    assert all(len(labels.split(";")) == 2 for r in rows for labels in r.top_labels)
    # `python -m beam_jobs.classify_images` (main) takes the same spellings.
    assert classify_images.main([*argv, "--output", str(out / "b.csv"), *IN_PROCESS]) == 0
    assert len(list(out.glob("b-*-of-00002.csv"))) == 2
    # predict takes the underscore spelling too.
    image = str(folder / "0.jpg")
    capsys.readouterr()
    assert cli.main(["predict", str(bundle), image, "--top_k", "1", "--format", "csv"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert cli.main(["predict", str(bundle), image, "--batch_size", "1", "--min_score", "0"]) == 0
    assert lines[0].startswith("path,") and len(lines[1].split(",")[3].split(";")) == 1


def _exit_code(function, argv) -> int:
    try:
        return function(argv)
    except SystemExit as stop:
        return stop.code


@pytest.mark.parametrize("entry", ["cli", "module"])
def test_unknown_option_is_an_error(bundle, tmp_path, capsys, entry, monkeypatch):
    _no_pipeline(monkeypatch)
    main = (lambda argv: cli.main(["classify", *argv])) if entry == "cli" else classify_images.main
    argv = ["--input", str(tmp_path), "--model", str(bundle), "--output", str(tmp_path / "o.csv")]
    argv += ["--top-kk", "3", *IN_PROCESS]
    assert _exit_code(main, argv) == 2
    err = capsys.readouterr().err
    assert "unrecognized arguments: --top-kk" in err
    # A Beam option's dash spelling is not Beam's: say which one was meant.
    argv[argv.index("--top-kk") : argv.index("--top-kk") + 2] = ["--direct-num-workers", "2"]
    assert _exit_code(main, argv) == 2
    assert "did you mean --direct_num_workers" in capsys.readouterr().err


def test_known_beam_options_still_pass(bundle, tmp_path):
    from beam_jobs.beam_options import unknown_beam_options

    assert unknown_beam_options(["--runner", "DataflowRunner", "--project", "p"]) == []
    assert unknown_beam_options(["--direct_num_workers=2", "--experiments", "a"]) == []
    assert unknown_beam_options(["--runner", "DaskRunner", "--dask_client_address", "h:1"]) == []
    assert unknown_beam_options(["--nope", "1", "--direct_num_workers", "1"]) == ["--nope"]


# ---------------------------------------------------------------- 11. quiet runs


def test_quiet_by_default_verbose_on_request(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    (folder / "bad.jpg").write_bytes(b"")
    base = [sys.executable, "-m", "beam_jobs.classify_images", "--input", str(folder),
            "--model", str(bundle), "--direct_num_workers", "2"]  # fmt: skip
    env = {k: v for k, v in os.environ.items() if k != "TF_CPP_MIN_LOG_LEVEL"}
    quiet = subprocess.run([*base, "--output", str(tmp_path / "q.csv")], cwd=ROOT, env=env,
                           capture_output=True, text=True, timeout=600)  # fmt: skip
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    lines = (quiet.stdout + quiet.stderr).strip().splitlines()
    assert all(line.startswith("classify") for line in lines), "\n".join(lines)
    # A progress line every 30 s may come on a slow machine; the rest is 3 or 4 lines.
    assert len([line for line in lines if "progress:" not in line]) <= 4, "\n".join(lines)
    assert "classify: 4 image files matched, 3 classified, 1 failed" in quiet.stdout
    counters = next(line for line in lines if line.startswith("classify counters:"))
    assert "files_matched=4" in counters and "images_classified=3" in counters
    assert "images_failed=1" in counters
    verbose = subprocess.run([*base, "--output", str(tmp_path / "v.csv"), "-v"], cwd=ROOT,
                             env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    assert verbose.returncode == 0, verbose.stderr[-3000:]
    assert len((verbose.stdout + verbose.stderr).splitlines()) > 20
    assert re.search(r"INFO:apache_beam", verbose.stderr)
