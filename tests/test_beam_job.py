"""The Beam classification job, run for real over a folder of good and bad files."""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import apache_beam as beam
import numpy as np
import pandas as pd
import pytest
from beam_support import CLASSES, IN_PROCESS, make_bundle, read_csv
from image_files import (
    PROC_SELF_MEM,
    animated_gif,
    bomb_png_header,
    cmyk_jpeg,
    encode,
    exif_rotated_jpeg,
    gray_png,
    halves,
    noise_jpeg,
    palette_png,
    permissions_enforced,
    png16,
    rgba_png,
    truncated_jpeg,
)
from PIL import Image

from beam_jobs import inputs, job, runner
from logo_batch import cli
from logo_batch.inference.bundle import load_bundle
from logo_batch.inference.predict import UNKNOWN_LABEL, predict_files
from logo_batch.result_csv import ROW_COLUMNS


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


@pytest.fixture(scope="module")
def image_folder(tmp_path_factory) -> tuple[Path, dict[str, str | None]]:
    """A folder of good and bad files; maps each image path to its expected error."""
    root = tmp_path_factory.mktemp("images")
    (root / "nested" / "deeper").mkdir(parents=True)
    good = {
        "photo.jpg": noise_jpeg(1),
        "UPPER.JPG": noise_jpeg(2),
        "alpha.png": rgba_png(),
        "gray.png": gray_png(),
        "palette.png": palette_png(),
        "sixteen.png": png16(),
        "cmyk.jpeg": cmyk_jpeg(),
        "animated.gif": animated_gif(),
        "rotated.jpg": exif_rotated_jpeg(),
        "picture.bmp": encode(halves(10, 6), "BMP"),
        "picture.webp": encode(halves(10, 6), "WEBP", lossless=True),
        'a, "quoted" name with spaces.jpg': noise_jpeg(3),
        "logo-ünïcødé-商标.png": rgba_png(),
        "nested/inner.png": gray_png(200),
        "nested/deeper/deep.JPEG": noise_jpeg(4),
    }
    good.update({f"nested/batch_{i:02d}.jpg": noise_jpeg(10 + i) for i in range(10)})
    bad = {
        "truncated.jpg": (truncated_jpeg(), "corrupt or truncated image data"),
        "empty.jpg": (b"", "empty file (0 bytes)"),
        "notes.png": (b"not a picture\n", "not a recognised image format"),
        "bomb.png": (bomb_png_header(), "refused before decoding"),
    }
    expected: dict[str, str | None] = {}
    for name, data in good.items():
        (root / name).write_bytes(data)
        expected[str(root / name)] = None
    for name, (data, error) in bad.items():
        (root / name).write_bytes(data)
        expected[str(root / name)] = error
    if os.path.exists(PROC_SELF_MEM):  # unreadable even for root: EIO at offset 0
        (root / "unreadable.jpg").symlink_to(PROC_SELF_MEM)
        expected[str(root / "unreadable.jpg")] = "cannot read file: Input/output error"
    locked = root / "locked.png"
    locked.write_bytes(gray_png())
    locked.chmod(0)
    if permissions_enforced(locked):
        expected[str(locked)] = "cannot read file: Permission denied"
    else:  # running as root: readable after all, so it is a good image
        expected[str(locked)] = None
    # Not images by extension: never matched, never a row.
    (root / "README.txt").write_text("ignore me")
    (root / "nested" / "model.h5").write_bytes(b"\0")
    return root, expected


@pytest.fixture(scope="module")
def local_run(bundle, image_folder, tmp_path_factory):
    """The job on the default local runner: 2 SDK worker processes."""
    root, _ = image_folder
    output = tmp_path_factory.mktemp("out") / "results.csv"
    config = job.JobConfig(input=str(root), model=str(bundle), output=str(output), batch_size=4)
    summary = job.run_job(config, ["--direct_num_workers", "2"])
    return summary, output


def test_one_row_per_file_with_the_right_errors(local_run, image_folder):
    summary, output = local_run
    _, expected = image_folder
    frame = read_csv(output)
    assert tuple(frame.columns) == ROW_COLUMNS
    assert sorted(frame["path"]) == sorted(expected)  # odd names survive the round trip
    assert list(frame["path"]) == sorted(frame["path"])
    for row in frame.itertuples():
        error = expected[row.path]
        if error is None:
            assert row.error == "" and row.label in CLASSES, row
            assert len(row.top_labels.split(";")) == len(CLASSES)
        else:
            assert error in row.error and row.label == "" and row.score == "", row
    n_bad = sum(e is not None for e in expected.values())
    assert (summary.matched, summary.written, summary.failed) == (
        len(expected),
        len(expected),
        n_bad,
    )
    assert summary.outputs == [str(output)]
    manifest = output.with_name(output.stem + ".manifest.json")  # the run's, beside the CSV
    assert sorted(output.parent.iterdir()) == sorted([manifest, output])  # temp removed


def test_labels_and_scores_equal_predict_files(local_run, image_folder, bundle):
    _, output = local_run
    _, expected = image_folder
    reference = {p.path: p for p in predict_files(load_bundle(bundle), sorted(expected))}
    for row in read_csv(output).itertuples():
        want = reference[row.path]
        assert row.error == want.error
        if not want.error:
            assert row.label == want.label
            assert row.top_labels.split(";") == want.top_labels
            got = [float(s) for s in row.top_scores.split(";")]
            np.testing.assert_allclose(got, want.top_scores, atol=2e-6)


def test_metrics_and_model_loaded_in_worker_processes(local_run, image_folder):
    summary, _ = local_run
    _, expected = image_folder
    n_bad = sum(e is not None for e in expected.values())
    assert summary.metrics["images_classified"] == len(expected) - n_bad
    assert summary.metrics["images_failed"] == n_bad
    assert summary.metrics["images_read"] == len(expected) - n_bad
    # RunInference's load metric: once in each of the 2 SDK worker processes (the
    # model holds the custom ScalePixels layer, so each worker registered it first).
    assert summary.metrics["model_loads"] == 2
    assert summary.line().startswith(f"classify: {len(expected)} image files matched")


def test_csv_quoting_survives_the_csv_module(local_run):
    _, output = local_run
    with output.open(newline="", encoding="utf-8") as handle:
        paths = [row["path"] for row in csv.DictReader(handle)]
    assert any(p.endswith('a, "quoted" name with spaces.jpg') for p in paths)
    assert any(p.endswith("logo-ünïcødé-商标.png") for p in paths)


def test_shards_min_score_and_error_fraction_via_cli(bundle, image_folder, tmp_path, capsys):
    root, expected = image_folder
    output = tmp_path / "out" / "labels.csv"
    argv = ["classify", "--input", f"{root}/**", "--model", str(bundle), "--output", str(output)]
    argv += ["--num_shards", "3", "--min_score", "0.99", "--max_error_fraction", "0.05"]
    assert cli.main(argv + IN_PROCESS) == 1  # ~20% of the files are bad
    captured = capsys.readouterr()
    assert "above --max_error_fraction 0.05" in captured.err
    assert f"classify: {len(expected)} image files matched" in captured.out
    shards = [output.parent / f"labels-{i:05d}-of-00003.csv" for i in range(3)]
    manifest = output.parent / "labels.manifest.json"
    assert sorted(output.parent.iterdir()) == sorted([manifest, *shards])  # no temp left
    frames = [read_csv(shard) for shard in shards]
    for frame in frames:
        assert tuple(frame.columns) == ROW_COLUMNS
        assert list(frame["path"]) == sorted(frame["path"])
    rows = pd.concat(frames)
    assert sorted(rows["path"]) == sorted(expected)
    good = rows[rows["error"] == ""]
    assert len(good) == sum(e is None for e in expected.values())
    assert (good["label"] == UNKNOWN_LABEL).all()  # 3 random classes never reach 0.99
    assert good["top_labels"].str.split(";").map(lambda labels: labels[0] in CLASSES).all()


class _DropOneRow(job.FormatRows):
    """FormatRows that silently loses the first row in sorted order (a runner bug)."""

    def __init__(self, victim: str, fingerprint: str):
        super().__init__(fingerprint)
        self._victim = victim

    def expand(self, predictions):
        victim = self._victim
        return super().expand(predictions) | beam.Filter(lambda row: row["path"] != victim)


def test_count_check_fails_the_job_when_rows_are_missing(
    bundle, image_folder, tmp_path, monkeypatch
):
    root, expected = image_folder
    victim = sorted(expected)[0]
    monkeypatch.setattr(job, "FormatRows", lambda fingerprint: _DropOneRow(victim, fingerprint))
    output = tmp_path / "results.csv"
    config = job.JobConfig(input=str(root), model=str(bundle), output=str(output))
    missing = f"{len(expected)} image files matched but {len(expected) - 1} rows were written"
    with pytest.raises(job.ClassifyJobError, match=f"{missing}: 1 rows missing"):
        job.run_job(config, IN_PROCESS)
    assert list(tmp_path.iterdir()) == []  # no CSV, no temporary folder


def test_input_patterns():
    assert inputs.input_pattern("/data/logos") == "/data/logos/**"
    assert inputs.input_pattern("gs://bucket/logos/") == "gs://bucket/logos/**"
    assert inputs.input_pattern("/data/*/img_??.jpg") == "/data/*/img_??.jpg"
    assert job.output_paths("/o/r.csv", 2) == ["/o/r-00000-of-00002.csv", "/o/r-00001-of-00002.csv"]


def test_runner_choice(monkeypatch):
    from apache_beam.options.pipeline_options import DirectOptions, StandardOptions
    from apache_beam.runners.portability.fn_api_runner import FnApiRunner

    monkeypatch.setenv("PYTHONPATH", "")
    for cores in (4, 1):  # the rule, not this machine: one worker process per core
        monkeypatch.setattr(runner, "cpu_count", lambda cores=cores: cores)
        monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
        options, chosen = runner.pipeline_options([])
        direct = options.view_as(DirectOptions)
        assert isinstance(chosen, FnApiRunner)  # never DirectRunner, which tries Prism first
        assert direct.direct_running_mode == "multi_processing"
        assert direct.direct_num_workers == cores
        assert os.environ["TF_NUM_INTRAOP_THREADS"] == "1"  # cores // workers
    monkeypatch.setattr(runner, "cpu_count", lambda: 4)
    monkeypatch.delenv("TF_NUM_INTRAOP_THREADS", raising=False)
    options, chosen = runner.pipeline_options(["--direct_num_workers", "2"])
    assert os.environ["TF_NUM_INTRAOP_THREADS"] == "2"  # 4 cores shared by 2 workers
    options, chosen = runner.pipeline_options(["--direct_num_workers", "3"])
    assert options.view_as(DirectOptions).direct_num_workers == 3
    options, chosen = runner.pipeline_options(["--runner", "DaskRunner", "--dask_npartitions", "4"])
    assert chosen is None and options.view_as(StandardOptions).runner == runner.DASK_RUNNER
    options, chosen = runner.pipeline_options(["--runner", "DataflowRunner", "--setup_file", "x"])
    assert chosen is None and options.view_as(StandardOptions).runner == "DataflowRunner"


def test_small_local_runs_run_in_this_process(monkeypatch, tmp_path, bundle, image_folder):
    from apache_beam.options.pipeline_options import DirectOptions

    root, expected = image_folder  # a few files, no runner options: the model loads once
    config = job.JobConfig(input=str(root), model=str(bundle), output=str(tmp_path / "o.csv"))
    summary = job.run_job(config)
    assert summary.metrics["model_loads"] == 1 and summary.matched == len(expected)

    monkeypatch.setattr(runner, "cpu_count", lambda: 2)
    options, chosen = runner.pipeline_options([], small=True)
    direct = options.view_as(DirectOptions)
    assert (direct.direct_running_mode, direct.direct_num_workers) == ("in_memory", 1)
    for given in (["--direct_num_workers", "2"], ["--direct_running_mode=multi_processing"]):
        options, chosen = runner.pipeline_options(given, small=True)
        direct = options.view_as(DirectOptions)
        assert (direct.direct_running_mode, direct.direct_num_workers) == ("multi_processing", 2)
    # Quiet workers import TensorFlow at start only for an engine that needs it.
    assert "--tensorflow" not in runner.LocalRunner(quiet=True).worker_command()
    assert "--tensorflow" in runner.LocalRunner(quiet=True, tensorflow=True).worker_command()
    # How small is counted: files below folders, lines of lists; remote: never small.
    (tmp_path / "d" / "e").mkdir(parents=True)
    for name in ("a.jpg", "b.txt", "e/c.png"):
        (tmp_path / "d" / name).write_bytes(b"x")
    (tmp_path / "list.txt").write_text("/x/1.jpg\n/x/2.jpg\n")
    folder = inputs.resolve_input(str(tmp_path / "d"))
    listed = inputs.resolve_file_list(str(tmp_path / "list.txt"))
    assert inputs.fewer_than([folder], 4) and not inputs.fewer_than([folder], 3)
    assert inputs.fewer_than([folder, listed], 6) and not inputs.fewer_than([folder, listed], 5)
    assert not inputs.fewer_than([inputs.InputSpec("gs://b/x", False, pattern="gs://b/x/**")], 9)


def test_dask_runner_on_a_local_cluster(bundle, image_folder, local_run, tmp_path):
    distributed = pytest.importorskip("dask.distributed")
    root, expected = image_folder
    output = tmp_path / "dask.csv"
    config = job.JobConfig(input=str(root), model=str(bundle), output=str(output), batch_size=4)
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        args = ["--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address]
        summary = job.run_job(config, args)
    assert summary.matched == summary.written == len(expected)
    dask_rows = read_csv(output)
    local_rows = read_csv(local_run[1])
    assert list(dask_rows["path"]) == list(local_rows["path"])
    assert list(dask_rows["label"]) == list(local_rows["label"])
    assert list(dask_rows["error"]) == list(local_rows["error"])


def test_module_command_line_with_worker_processes(bundle, image_folder, tmp_path):
    """`python -m beam_jobs.classify_images`, as users run it, on worker processes."""
    root, expected = image_folder
    output = tmp_path / "cli.csv"
    command = [
        sys.executable, "-m", "beam_jobs.classify_images", "--input", str(root),
        "--model", str(bundle), "--output", str(output), "--direct_num_workers", "2",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    rows = read_csv(output)
    assert sorted(rows.path) == sorted(expected)
    assert f"classify: {len(expected)} image files matched" in done.stdout + done.stderr


@pytest.fixture(scope="module")
def whole_mode_case(tmp_path_factory):
    """A background bundle and a small folder of photos (and one bad file)."""
    from beam_support import make_background_bundle

    root = tmp_path_factory.mktemp("whole")
    bundle = make_background_bundle(root / "bundle", rejection_threshold=0.3)
    photos = root / "photos"
    (photos / "nested").mkdir(parents=True)
    rng = np.random.default_rng(7)
    for i, (h, w) in enumerate([(30, 40), (64, 48), (20, 90), (50, 50), (33, 21)]):
        name = f"nested/p{i}.png" if i % 2 else f"p{i}.png"
        array = rng.integers(0, 256, (h, w, 3), np.uint8)
        (photos / name).write_bytes(
            encode(halves(w, h) if i == 3 else Image.fromarray(array), "PNG")
        )
    (photos / "bad.jpg").write_bytes(truncated_jpeg())
    # A JPEG over twice whole mode's decode side (60 px at 24 px): decoded at 1/2.
    large = Image.fromarray(rng.integers(0, 256, (8, 10, 3), np.uint8)).resize((200, 160))
    (photos / "large.jpg").write_bytes(encode(large, "JPEG"))
    return bundle, photos


def test_whole_mode_rows_equal_predict_whole_mode(whole_mode_case, tmp_path):
    bundle, photos = whole_mode_case
    output = tmp_path / "whole.csv"
    config = job.JobConfig(input=str(photos), model=str(bundle), output=str(output), batch_size=2)
    summary = job.run_job(config, IN_PROCESS)  # auto: the bundle has a background class
    assert summary.mode == "whole" and summary.line().split("; engine ")[0].endswith("; whole mode")
    rows = read_csv(output)
    assert tuple(rows.columns) == ROW_COLUMNS
    paths = sorted(str(p) for p in photos.rglob("*.*"))
    assert list(rows["path"]) == paths
    # min_score None: the bundle's threshold 0.3, as predict's default in whole mode.
    reference = {
        p.path: p for p in predict_files(load_bundle(bundle), paths, min_score=0.3, mode="whole")
    }
    for row in rows.itertuples():
        want = reference[row.path]
        assert (row.error, row.mode) == (want.error, "whole")
        if want.error:
            assert row.box == "" and row.label == ""
            continue
        assert row.label == want.label and row.label != ""
        assert row.top_labels.split(";") == want.top_labels
        assert "none" not in row.top_labels.split(";")
        assert row.box == " ".join(map(str, want.box))
        if row.path.endswith("large.jpg"):  # boxes in the file's pixels, not the decode's
            x0, y0, x1, y1 = want.box
            assert x1 <= 200 and y1 <= 160 and x1 - x0 >= 0.4 * 200 - 1
        got = [float(s) for s in row.top_scores.split(";")]
        np.testing.assert_allclose(got, want.top_scores, atol=2e-6)


def test_mode_option_of_the_job(whole_mode_case, tmp_path, capsys):
    bundle, photos = whole_mode_case
    output = tmp_path / "single.csv"
    argv = ["classify", "--input", str(photos), "--model", str(bundle), "--output", str(output)]
    assert cli.main([*argv, "--mode", "single", "--top-k", "4", *IN_PROCESS]) == 0
    assert "; single mode" in capsys.readouterr().out
    rows = read_csv(output)
    good = rows[rows["error"] == ""]
    assert (rows["mode"] == "single").all() and (rows["box"] == "").all()
    assert good["top_labels"].str.split(";").map(len).eq(4).all()  # "none" is a class here
    reference = {p.path: p for p in predict_files(load_bundle(bundle), list(good["path"]),
                                                  top_k=4, mode="single")}  # fmt: skip
    for row in good.itertuples():
        assert row.top_labels.split(";") == reference[row.path].top_labels
    with pytest.raises(SystemExit):  # argparse: not a choice
        cli.main([*argv, "--mode", "tiles", *IN_PROCESS])
    assert "invalid choice: 'tiles'" in capsys.readouterr().err
