"""Hostile input, every round (issues 9 and 32, and a user's own logo folder): nothing a
user types or drops in a folder may crash, lie or overwrite.

Each table row is an input, the command it goes to, and the outcome it must have:

- a **row** with its reason (a bad file among good ones: :data:`FOLDER`, one Beam run
  over a folder holding all of them, the same folder on the Dask runner, ``predict``
  over its files);
- a **usage error**, exit 2, naming the option (:data:`USAGE`, parsed in this process:
  nothing runs);
- a **refusal**: one line naming the file and the problem, exit 1, no traceback,
  nothing overwritten and no pipeline built (:data:`OUTPUTS`, :data:`BUNDLES`,
  :data:`INPUTS`, :data:`DATASETS`, :data:`RUN_FOLDERS`);
- a **skip**, named and counted (the dataset builder: :data:`ARCHIVES`; a logo folder:
  :data:`LOGO_FILES`, :data:`LOGO_FOLDERS`).

The rest are the runs the tables cannot hold: killed runs, reruns, odd but valid names.
Everything shares one tiny bundle (tests/beam_support.py).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import psutil
import pytest
from beam_support import CLASSES, IN_PROCESS, make_bundle, read_csv
from hostile_support import (
    ArchiveContents,
    add_row,
    as_manual_dir,
    cut_in_half,
    cut_in_scan,
    edit_keras_config,
    edit_metadata,
    garbage_tflite,
    images_member,
    jpeg,
    lambda_bundle,
    os_name,
    photo,
    png,
    put,
    read_tar_gz,
    refusal_lines,
    remove,
    rewrite_archive,
    run_command,
    snapshot,
    sparse_file,
)
from image_files import (
    animated_gif,
    bomb_png_header,
    cmyk_jpeg,
    exif_rotated_jpeg,
    gray_png,
    noise_jpeg,
    png16,
    truncated_jpeg,
)

from beam_jobs import classify_images, job, listing
from logo_batch import cli
from logo_batch.inference.file_access import DEFAULT_MAX_BYTES
from logo_batch.result_csv import ROW_COLUMNS, escape_path, path_bytes

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def _no_pipeline(monkeypatch) -> None:
    """Makes building the pipeline fail: a check must stop the job before it."""

    def refuse(*args, **kwargs):
        raise AssertionError("the pipeline was built although the job should have stopped")

    monkeypatch.setattr(job, "build_pipeline", refuse)


def _beam(argv: list[str]) -> int:
    return cli.main(["classify", *argv])


# ============================================================ 1. a folder of bad files

OK = None  # the row of a file classified: a label, no error


class FileCase(NamedTuple):
    """Something in the hostile folder: how it is made there, the rows the Beam job gives
    (path below the folder -> a text of the row's error, or :data:`OK`), what
    ``predict`` says of the paths given to it (default: the same), the extension the
    job counts it under when it skips it."""

    make: Callable[[Path], object]
    rows: dict[str | bytes, str | None]
    predict: dict[str | bytes, str | None] | None = None
    skipped: str = ""


def _file(name: str | bytes, data: bytes) -> Callable[[Path], object]:
    def make(root: Path) -> None:
        path = os_name(root, name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as handle:
            handle.write(data)

    return make


def _link(name: str, target: str, folder: bool = False) -> Callable[[Path], object]:
    """A symbolic link ``name`` to ``target``: ``{root}`` is the hostile folder,
    ``{parent}`` the folder it is in (any other target is taken as written)."""

    def make(root: Path) -> None:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        where = Path(target.format(root=root, parent=root.parent))
        (root / name).symlink_to(where, target_is_directory=folder)

    return make


LOCKED = "locked"  # its listing is refused (os.scandir patched: root reads any folder)
DENIED = "cannot read folder: Permission denied"
NO_SUCH_FILE = "cannot read file: No such file or directory"

FOLDER: dict[str, FileCase] = {
    # Files that classify, whatever their format or name.
    "JPEG": FileCase(_file("a.jpg", noise_jpeg(1)), {"a.jpg": OK}),
    "upper-case extension": FileCase(_file("UPPER.JPG", noise_jpeg(2)), {"UPPER.JPG": OK}),
    "16-bit PNG": FileCase(_file("deep16.png", png16()), {"deep16.png": OK}),
    "CMYK JPEG": FileCase(_file("cmyk.jpg", cmyk_jpeg()), {"cmyk.jpg": OK}),
    "animated GIF": FileCase(_file("animated.gif", animated_gif()), {"animated.gif": OK}),
    "EXIF-rotated JPEG": FileCase(_file("turned.jpg", exif_rotated_jpeg()), {"turned.jpg": OK}),
    "glob characters": FileCase(_file("sub*/b?[1].png", gray_png()), {"sub*/b?[1].png": OK}),
    "newline in the name": FileCase(_file("new\nline.jpg", noise_jpeg(3)), {"new\nline.jpg": OK}),
    "comma": FileCase(_file("com,ma.jpg", noise_jpeg(4)), {"com,ma.jpg": OK}),
    "quote": FileCase(_file('quo"te.jpg', noise_jpeg(5)), {'quo"te.jpg': OK}),
    "backslash": FileCase(_file("back\\slash.jpg", noise_jpeg(6)), {"back\\slash.jpg": OK}),
    "name not UTF-8": FileCase(_file(b"caf\xe9.jpg", noise_jpeg(7)), {b"caf\xe9.jpg": OK}),
    # Bad files: a row each, with the reason.
    "name not UTF-8, truncated": FileCase(
        _file(b"bad\xff\xfe.jpg", truncated_jpeg()), {b"bad\xff\xfe.jpg": "corrupt or truncated"}
    ),
    "zero bytes": FileCase(_file("empty.jpg", b""), {"empty.jpg": "empty file (0 bytes)"}),
    "truncated JPEG": FileCase(
        _file("cut.jpg", truncated_jpeg()), {"cut.jpg": "corrupt or truncated image data"}
    ),
    "text named .jpg": FileCase(
        _file("notes.jpg", b"hello"), {"notes.jpg": "not a recognised image format"}
    ),
    "20000x20000 header": FileCase(
        _file("bomb.png", bomb_png_header(20_000, 20_000)),
        {"bomb.png": "refused before decoding (possible decompression bomb)"},
    ),
    "60 megapixels": FileCase(
        _file("big.png", bomb_png_header(10_000, 6_000)),
        {"big.png": "10000x6000 = 60,000,000 pixels, over the limit of 50,000,000"},
    ),
    "over --max-bytes (sparse)": FileCase(
        lambda root: sparse_file(root / "huge.jpg", DEFAULT_MAX_BYTES + 1),
        {"huge.jpg": "file is 268,435,457 bytes, over the limit of 268,435,456 (--max-bytes)"},
    ),
    "named pipe": FileCase(
        lambda root: os.mkfifo(root / "fifo.jpg"),
        {"fifo.jpg": "not a regular file (a named pipe)"},
    ),
    "folder named like an image": FileCase(
        _file("album.jpg/c.jpg", noise_jpeg(8)),
        {"album.jpg/c.jpg": OK},
        predict={"album.jpg": "not a regular file (a folder)", "album.jpg/c.jpg": OK},
    ),
    "unreadable folder": FileCase(
        _file(f"{LOCKED}/d.jpg", noise_jpeg(9)), {LOCKED: DENIED}, predict={}
    ),
    # Symbolic links: followed, loops walked once, broken ones a row.
    "broken link": FileCase(
        _link("gone.jpg", "{parent}/nowhere.jpg"),
        {"gone.jpg": "broken symbolic link (to "},
        predict={"gone.jpg": NO_SUCH_FILE},
    ),
    "link to itself": FileCase(
        _link("loop.jpg", "{root}/loop.jpg"),
        {"loop.jpg": "cannot read file: Too many levels of symbolic links"},
    ),
    "link to a file": FileCase(_link("b.jpg", "{parent}/elsewhere/far.jpg"), {"b.jpg": OK}),
    "linked folder": FileCase(
        _link("linked", "{parent}/elsewhere", folder=True), {"linked/far.jpg": OK}
    ),
    "link to an ancestor": FileCase(_link("sub*/up", "{root}", folder=True), {}),
    "link to its own folder": FileCase(_link("sub*/self", ".", folder=True), {}),
    "broken folder link": FileCase(
        _link("gone_folder", "{parent}/nowhere", folder=True), {}, predict={}, skipped="none"
    ),
    # Not images by extension: no row, counted.
    ".tiff": FileCase(
        _file("scan.tiff", b"II*\0"), {}, {"scan.tiff": "not a recognised"}, skipped="tiff"
    ),
    ".heic": FileCase(_file("photo.heic", b"x"), {}, {"photo.heic": "not a recognised"}, "heic"),
    ".txt": FileCase(_file("readme.txt", b"x"), {}, {"readme.txt": "not a recognised"}, "txt"),
    "no extension": FileCase(_file("noext", b"x"), {}, {"noext": "not a recognised"}, "none"),
}


@pytest.fixture(scope="module")
def hostile_folder(tmp_path_factory) -> Path:
    """Every :data:`FOLDER` case in one folder whose own name is a glob (``photos[2019]``
    beside ``photos2``, which that glob would match)."""
    parent = tmp_path_factory.mktemp("hostile")
    (parent / "elsewhere").mkdir()
    (parent / "elsewhere" / "far.jpg").write_bytes(noise_jpeg(10))
    (parent / "photos2").mkdir()
    (parent / "photos2" / "other.jpg").write_bytes(noise_jpeg(11))
    root = parent / "photos[2019]"
    root.mkdir()
    for case in FOLDER.values():
        case.make(root)
    return root


def _locked_listing(monkeypatch, root: Path) -> None:
    real_scandir = os.scandir

    def scandir(path="."):
        if not isinstance(path, int) and os.fspath(path) == str(root / LOCKED):
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)


def _classify_folder(root: Path, bundle: Path, output: Path, extra: list[str]):
    config = job.JobConfig(
        input=str(root), model=str(bundle), output=str(output), progress_interval=0
    )
    with pytest.MonkeyPatch.context() as patch:
        _locked_listing(patch, root)
        summary = job.run_job(config, extra)
    rows = {row.path: (row.label, row.error) for row in read_csv(output).itertuples()}
    return summary, rows


@pytest.fixture(scope="module")
def beam_run(hostile_folder, bundle, tmp_path_factory):
    """One run of the Beam job (in process) over the whole hostile folder."""
    output = tmp_path_factory.mktemp("beam_out") / "rows.csv"
    return _classify_folder(hostile_folder, bundle, output, IN_PROCESS)


def _expected(root: Path, rows: dict) -> dict[str, str | None]:
    return {escape_path(os_name(root, name)): reason for name, reason in rows.items()}


def _check_row(found: tuple[str, str] | None, reason: str | None, where: str) -> None:
    assert found is not None, f"no row for {where}"
    label, error = found
    if reason is OK:
        assert error == "" and label in CLASSES, (where, found)
    else:
        assert reason in error and label == "", (where, found)


@pytest.mark.parametrize("case", list(FOLDER))
def test_a_bad_file_in_a_folder_is_a_row_with_its_reason(case, beam_run, hostile_folder):
    _, rows = beam_run
    for path, reason in _expected(hostile_folder, FOLDER[case].rows).items():
        _check_row(rows.get(path), reason, path)


def test_the_folder_run_has_one_row_a_file_and_counts_what_it_skipped(beam_run, hostile_folder):
    summary, rows = beam_run
    expected = {}
    for case in FOLDER.values():
        expected.update(_expected(hostile_folder, case.rows))
    assert sorted(rows) == sorted(expected)  # nothing else: not photos2, no loop twice
    failed = sum(reason is not OK for reason in expected.values())
    assert (summary.matched, summary.written, summary.failed) == (len(rows), len(rows), failed)
    skipped = [case.skipped for case in FOLDER.values() if case.skipped]
    assert summary.skipped == {kind: skipped.count(kind) for kind in sorted(set(skipped))}
    assert f"{len(skipped)} other files skipped" in summary.line()
    # A path that is not UTF-8 is written escaped, losslessly.
    cafe = escape_path(os_name(hostile_folder, b"caf\xe9.jpg"))
    assert path_bytes(cafe) == os.path.join(os.fsencode(hostile_folder), b"caf\xe9.jpg")


def test_the_same_folder_on_the_dask_runner_gives_the_same_rows(
    beam_run, hostile_folder, bundle, tmp_path
):
    """The Dask runner (workers in this process: its translation of the pipeline)
    reports no counters: the skipped files are counted in the pipeline's data."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None
    ) as cluster:
        extra = ["--runner", "DaskRunner", "--dask_client_address", cluster.scheduler_address]
        summary, rows = _classify_folder(hostile_folder, bundle, tmp_path / "dask.csv", extra)
    local_summary, local_rows = beam_run
    assert rows == local_rows
    assert (summary.matched, summary.failed) == (local_summary.matched, local_summary.failed)
    assert summary.skipped == local_summary.skipped
    manifest = json.loads((tmp_path / "dask.manifest.json").read_text(encoding="utf-8"))
    assert manifest["counts"]["skipped"] == local_summary.skipped


@pytest.fixture(scope="module")
def predict_rows(hostile_folder, bundle) -> dict[str, tuple[str, str]]:
    """``logo-batch predict --format csv`` over every path the cases give it."""
    paths = []
    for case in FOLDER.values():
        named = case.rows if case.predict is None else case.predict
        paths += [os_name(hostile_folder, name) for name in named]
    code, out, err = run_command(cli.main, ["predict", str(bundle), *paths, "--format", "csv"])
    assert code == 1 and "Traceback" not in err  # 1: some files failed
    return {row["path"]: (row["label"], row["error"]) for row in csv.DictReader(io.StringIO(out))}


@pytest.mark.parametrize("case", list(FOLDER))
def test_predict_gives_a_bad_file_a_row_with_its_reason(case, predict_rows, hostile_folder):
    named = FOLDER[case].rows if FOLDER[case].predict is None else FOLDER[case].predict
    for path, reason in _expected(hostile_folder, named).items():
        _check_row(predict_rows.get(path), reason, path)


# ====================================================== 2. usage errors: exit 2, parsed

# Enough for argparse to reach the option under test (nothing runs: parsing fails first).
ARGS = {
    "predict": ["predict", "bundle", "a.jpg"],
    "evaluate": ["evaluate", "bundle", "--data-dir", "data"],
    "classify": ["classify", "--input", "in", "--model", "bundle", "--output", "o.csv"],
    "beam": ["--input", "in", "--model", "bundle", "--output", "o.csv"],  # the Beam module
    "train": ["train", "--data-dir", "data", "--output-dir", "run"],
    "quantize": ["quantize", "bundle", "--data-dir", "data"],
    "report": ["report", "results.csv"],
    "make-synthetic": ["make-synthetic", "out.tar.gz"],
    "demo": ["demo"],
    "dataset": ["dataset", "build", "logos", "--name", "mine", "--data-dir", "data"],
}
INFERENCE = ("predict", "evaluate", "classify", "beam")
BULK = ("predict", "classify", "beam")
ONE = "must be a whole number >= 1"
SCORE = "must be a number in [0, 1] or 'bundle'"


class Usage(NamedTuple):
    """A value typed to ``commands``: each says ``argument OPTION: MESSAGE``, exit 2
    (``option``: the name it is known by, when ``argv`` gives another)."""

    commands: tuple[str, ...]
    argv: tuple[str, ...]
    message: str
    option: str = ""


def _train_rows() -> dict[str, Usage]:
    """Every number ``train`` takes (its one table, NUMBER_RULES), with a value its
    rule refuses."""
    import argparse

    from logo_batch.training.config import NUMBER_RULES

    rows = {}
    for name, rule in NUMBER_RULES.items():
        option = "--" + name.replace("_", "-")
        for value in ("-1", "0", "1", "nan", "x"):
            try:
                rule(value)
            except argparse.ArgumentTypeError as error:
                rows[f"train {option} {value}"] = Usage(("train",), (option, value), str(error))
                break
    return rows


USAGE: dict[str, Usage] = {
    # Issue 32, repro 4, as typed there.
    "--batch_size 0": Usage(("beam",), ("--batch_size", "0"), f"{ONE}, not '0'"),
    "--batch_size -1": Usage(("beam",), ("--batch_size", "-1"), f"{ONE}, not '-1'"),
    "--top_k 0": Usage(("beam",), ("--top_k", "0"), f"{ONE}, not '0'"),
    "--min_score 2": Usage(("beam",), ("--min_score", "2"), SCORE),
    "--min_score -1": Usage(("beam",), ("--min_score", "-1"), SCORE),
    "--min_score nan": Usage(("beam",), ("--min_score", "nan"), SCORE),
    "--max_pixels 0": Usage(("beam",), ("--max_pixels", "0"), ONE),
    "--max_error_fraction -1": Usage(
        ("beam",), ("--max_error_fraction", "-1"), "must be a number in [0, 1]"
    ),
    "predict --top-k 0": Usage(("predict",), ("--top-k", "0"), ONE),
    "predict --min-score nan": Usage(("predict",), ("--min-score", "nan"), SCORE),
    "predict --min-score 2": Usage(("predict",), ("--min-score", "2"), SCORE),
    # The shared options, in every command that has them.
    "--min-score high": Usage(INFERENCE, ("--min-score", "high"), SCORE),
    "--threshold 2 (evaluate's old name)": Usage(
        ("evaluate",), ("--threshold", "2"), SCORE, "--min-score"
    ),
    "--top-k 0": Usage(BULK, ("--top-k", "0"), ONE),
    "--batch-size 0": Usage((*INFERENCE, "train"), ("--batch-size", "0"), ONE),
    "--max-pixels 0": Usage(BULK, ("--max-pixels", "0"), ONE),
    "--max-bytes 0": Usage(BULK, ("--max-bytes", "0"), ONE),
    "--max-bytes 1.5": Usage(BULK, ("--max-bytes", "1.5"), ONE),
    "--max_bytes 0": Usage(BULK, ("--max_bytes", "0"), ONE),
    "--mode tiles": Usage(INFERENCE, ("--mode", "tiles"), "invalid choice: 'tiles'"),
    "--precision fp8": Usage(INFERENCE, ("--precision", "fp8"), "invalid choice: 'fp8'"),
    # The Beam job's own.
    "--max-error-fraction 1.5": Usage(
        ("classify", "beam"), ("--max-error-fraction", "1.5"), "in [0, 1]"
    ),
    "--max-error-fraction nan": Usage(
        ("classify", "beam"), ("--max-error-fraction", "nan"), "in [0, 1]"
    ),
    "--progress-interval -1": Usage(("classify", "beam"), ("--progress-interval", "-1"), ">= 0"),
    "--rows-per-shard 0": Usage(("classify", "beam"), ("--rows-per-shard", "0"), ONE),
    "--num-shards 0": Usage(("classify", "beam"), ("--num-shards", "0"), "--num-shards"),
    "--num-shards -2": Usage(("classify", "beam"), ("--num-shards", "-2"), "--num-shards"),
    "--num-shards some": Usage(("classify", "beam"), ("--num-shards", "some"), "--num-shards"),
    # The other commands' numbers.
    **_train_rows(),
    "quantize --calibration 0": Usage(("quantize",), ("--calibration", "0"), ONE),
    "report --samples-per-brand -1": Usage(
        ("report",), ("--samples-per-brand", "-1"), "must be a whole number >= 0"
    ),
    "report --band x": Usage(("report",), ("--band", "x"), "must be a whole number >= 0"),
    "report --min-score 2": Usage(("report",), ("--min-score", "2"), "in [0, 1]"),
    "report --thumbnail-size 8": Usage(("report",), ("--thumbnail-size", "8"), ">= 16"),
    "make-synthetic --images-per-class 1": Usage(
        ("make-synthetic",), ("--images-per-class", "1"), ">= 2"
    ),
    "make-synthetic --image-size 16": Usage(("make-synthetic",), ("--image-size", "16"), ">= 32"),
    "demo --epochs -1": Usage(("demo",), ("--epochs", "-1"), ">= 0"),
    "dataset build --split x": Usage(("dataset",), ("--split", "x"), "three fractions"),
}


def _parse_only(command: str, argv: list[str]) -> tuple[int, str]:
    main = classify_images.main if command == "beam" else cli.main
    code, _, err = run_command(main, argv)
    return code, err


# Commands whose options take both spellings (``--top-k``, ``--top_k``: add_option).
BOTH_SPELLINGS = ("predict", "evaluate", "classify", "beam", "train", "report")


@pytest.mark.parametrize("case", list(USAGE))
def test_a_bad_value_is_a_usage_error_naming_the_option(case):
    commands, (typed, *values), message, option = USAGE[case]
    option = option or "--" + typed.lstrip("-").replace("_", "-")
    for command in commands:
        spellings = {typed}
        if command in BOTH_SPELLINGS:
            spellings |= {option, "--" + option[2:].replace("-", "_")}
        for spelling in sorted(spellings):
            code, err = _parse_only(command, [*ARGS[command], spelling, *values])
            assert code == 2, (command, spelling, err)
            assert f"argument {option}: " in err and message in err, (command, err)
            assert "Traceback" not in err


def test_classify_without_an_input_is_a_usage_error(bundle, tmp_path):
    argv = ["--model", str(bundle), "--output", str(tmp_path / "o.csv"), *IN_PROCESS]
    code, _, err = run_command(_beam, argv)
    assert code == 2 and "give --input and/or --file-list" in err
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("entry", ["cli", "module"])
def test_an_unknown_option_is_a_usage_error(bundle, tmp_path, entry, monkeypatch):
    _no_pipeline(monkeypatch)
    main = _beam if entry == "cli" else classify_images.main
    argv = ["--input", str(tmp_path), "--model", str(bundle), "--output", str(tmp_path / "o.csv")]
    code, _, err = run_command(main, [*argv, "--top-kk", "3", *IN_PROCESS])
    assert code == 2 and "unrecognized arguments: --top-kk" in err
    # A Beam option's dash spelling is not Beam's: say which one was meant.
    code, _, err = run_command(main, [*argv, "--direct-num-workers", "2", *IN_PROCESS])
    assert code == 2 and "did you mean --direct_num_workers" in err


def test_known_beam_options_still_pass():
    from beam_jobs.beam_options import unknown_beam_options

    assert unknown_beam_options(["--runner", "DataflowRunner", "--project", "p"]) == []
    assert unknown_beam_options(["--direct_num_workers=2", "--experiments", "a"]) == []
    assert unknown_beam_options(["--runner", "DaskRunner", "--dask_client_address", "h:1"]) == []
    assert unknown_beam_options(["--nope", "1", "--direct_num_workers", "1"]) == ["--nope"]


# ============================ 3. refusals: one line, exit 1, nothing overwritten or run


class Refusal(NamedTuple):
    """A run refused before any work: how its files are laid out (given the work folder
    and the bundle; returns the arguments of ``logo-batch classify``), and what its one
    line says (``{tmp}``: the work folder)."""

    setup: Callable[[Path, Path], list[str]]
    message: str


def _inputs(tmp: Path) -> Path:
    (tmp / "in").mkdir(exist_ok=True)
    (tmp / "in" / "victim.jpg").write_bytes(noise_jpeg(1))
    (tmp / "in" / "VICTIM2.JPG").write_bytes(noise_jpeg(2))
    return tmp / "in"


def _job_csv(path: Path) -> Path:
    """An output of this job (header only)."""
    path.write_text(",".join(ROW_COLUMNS) + "\n", encoding="utf-8")
    return path


def _output_case(output: str, *extra: str, input: str = "in") -> Callable[[Path, Path], list]:
    """``classify --input {tmp}/INPUT --model BUNDLE --output OUTPUT EXTRA...``
    (``{tmp}``, ``{bundle}`` filled in)."""

    def setup(tmp: Path, bundle: Path) -> list[str]:
        _inputs(tmp)
        argv = ["--input", f"{tmp}/{input}", "--model", str(bundle), "--output", output, *extra]
        return [arg.format(tmp=tmp, bundle=bundle) for arg in argv]

    return setup


def _with(prepare: Callable[[Path], object], setup: Callable) -> Callable:
    def both(tmp: Path, bundle: Path) -> list[str]:
        argv = setup(tmp, bundle)
        prepare(tmp)
        return argv

    return both


OUTPUTS: dict[str, Refusal] = {
    # Issue 32, repro 1: the output would replace an input.
    "a file of the --input folder": Refusal(
        _output_case("{tmp}/in/victim.jpg"), "is an input: a file of --input {tmp}/in"
    ),
    "an input, upper-case extension": Refusal(
        _output_case("{tmp}/in/VICTIM2.JPG"), "is an input: a file of --input"
    ),
    "an input through a link to its folder": Refusal(
        _with(lambda t: (t / "link").symlink_to(t / "in"), _output_case("{tmp}/link/victim.jpg")),
        "is an input: a file of --input {tmp}/in",
    ),
    "a file an --input glob matches": Refusal(
        _output_case("{tmp}/in/victim.jpg", input="in/*.jpg"), "is an input: a file of --input"
    ),
    "the --input file itself": Refusal(
        _output_case("{tmp}/in/victim.jpg", input="in/victim.jpg"), "is an input"
    ),
    "the --file-list": Refusal(
        _with(
            lambda t: (t / "list.txt").write_text(f"{t}/in/victim.jpg\n"),
            _output_case("{tmp}/list.txt", "--file-list", "{tmp}/list.txt"),
        ),
        "is the --file-list {tmp}/list.txt",
    ),
    "a shard of another --previous output": Refusal(
        _with(
            lambda t: [_job_csv(t / f"old-0000{i}-of-00002.csv") for i in range(2)],
            _output_case("{tmp}/old-00000-of-00002.csv", "--previous", "{tmp}/old.csv"),
        ),
        "is a file of --previous {tmp}/old.csv",
    ),
    "inside the model bundle": Refusal(
        _output_case("{bundle}/results.csv"), "is inside the model bundle"
    ),
    "an existing CSV of something else": Refusal(
        _with(
            lambda t: (t / "phones.csv").write_text("name,phone\nada,123\n"),
            _output_case("{tmp}/phones.csv"),
        ),
        "exists and is not an output of this job",
    ),
    "an existing photo outside the inputs": Refusal(
        _with(lambda t: (t / "k.jpg").write_bytes(noise_jpeg(3)), _output_case("{tmp}/k.jpg")),
        "exists and is not an output of this job",
    ),
    "another file's run manifest name": Refusal(
        _with(
            lambda t: (t / "r.manifest.json").write_text('{"mine": 1}'),
            _output_case("{tmp}/r.csv"),
        ),
        "(its file {tmp}/r.manifest.json) exists and is not an output of this job",
    ),
    # Issue 9: where it cannot be written.
    "a folder": Refusal(
        _with(lambda t: (t / "results.csv").mkdir(), _output_case("{tmp}/results.csv")),
        "{tmp}/results.csv: --output is a folder",
    ),
    "under a file": Refusal(
        _with(lambda t: (t / "plain").write_text("a file"), _output_case("{tmp}/plain/out/r.csv")),
        "cannot write {tmp}/plain/out/r.csv: {tmp}/plain is a file, not a folder",
    ),
}


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_an_output_that_would_overwrite_is_refused_before_any_work(
    case, bundle, tmp_path, monkeypatch
):
    argv = OUTPUTS[case].setup(tmp_path, bundle)
    before, in_bundle = snapshot(tmp_path), snapshot(bundle)
    _no_pipeline(monkeypatch)
    code, _, err = run_command(_beam, [*argv, *IN_PROCESS])
    lines = refusal_lines(err)
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("classify FAILED: ")
    assert OUTPUTS[case].message.format(tmp=tmp_path) in lines[0]
    assert snapshot(tmp_path) == before and snapshot(bundle) == in_bundle  # nothing written


def test_a_refused_run_makes_no_output_folder(bundle, tmp_path, monkeypatch):
    (tmp_path / "not_a_bundle").mkdir()
    argv = _output_case("{tmp}/new/r.csv")(tmp_path, bundle)
    argv[argv.index("--model") + 1] = str(tmp_path / "not_a_bundle")
    _no_pipeline(monkeypatch)
    code, _, err = run_command(_beam, [*argv, *IN_PROCESS])
    assert code == 1 and "not_a_bundle" in err and "Traceback" not in err, err
    assert not (tmp_path / "new").exists()


def test_an_output_in_a_folder_without_write_permission_is_refused(bundle, tmp_path, monkeypatch):
    _inputs(tmp_path)
    (tmp_path / "ro").mkdir()
    _no_pipeline(monkeypatch)
    # As root the mode bits do not stop writing: os.access is what the check asks.
    monkeypatch.setattr(
        os, "access", lambda path, mode, **kw: os.fspath(path) != str(tmp_path / "ro")
    )
    with pytest.raises(job.ClassifyJobError, match=f"{tmp_path / 'ro'}: no permission to write"):
        job.run_job(
            job.JobConfig(str(tmp_path / "in"), str(bundle), str(tmp_path / "ro" / "r.csv")),
            IN_PROCESS,
        )


def test_a_rerun_onto_its_own_output_replaces_it(bundle, tmp_path):
    """What the --output checks must let through: the job's own earlier output, also as
    the --previous of the rerun."""
    folder = _inputs(tmp_path)
    output = tmp_path / "rows.csv"
    argv = ["--input", str(folder), "--model", str(bundle), "--output", str(output), *IN_PROCESS]
    assert run_command(_beam, argv)[0] == 0
    (folder / "new.jpg").write_bytes(noise_jpeg(4))
    code, out, err = run_command(_beam, [*argv, "--previous", str(output)])
    assert code == 0, err
    assert "2 reused" in out and len(read_csv(output)) == 3


def test_report_refuses_an_output_that_is_its_input_or_not_a_report(bundle, tmp_path):
    rows = _job_csv(tmp_path / "rows.csv")
    (tmp_path / "notes.html").write_text("<p>my notes</p>")
    before = snapshot(tmp_path)
    for output, message in [
        (rows, f"--output {rows} is one of the inputs"),
        (tmp_path / "notes.html", "exists and is not a report this command wrote"),
    ]:
        code, _, err = run_command(cli.main, ["report", str(rows), "--output", str(output)])
        assert code == 1 and len(refusal_lines(err)) == 1, err
        assert refusal_lines(err)[0].startswith(f"logo-batch report: error: --output {output}")
        assert message in err
    assert snapshot(tmp_path) == before


class BundleCase(NamedTuple):
    """A damaged copy of the tiny bundle: how it is damaged, the file its line names
    and what it says, ``--precision`` given, the commands it applies to."""

    damage: Callable[[Path], object]
    file: str
    message: str
    precision: str = "auto"
    commands: tuple[str, ...] = ("predict", "classify", "evaluate", "quantize")


BUNDLES: dict[str, BundleCase] = {
    # Issue 32, repros 3 and 5.
    "5 class names for 3 outputs": BundleCase(
        lambda b: edit_metadata(b, class_names=[f"c{i}" for i in range(5)]),
        "metadata.json",
        "5 class names, but {bundle}/model.keras has 3 outputs",
    ),
    "40 class names for 3 outputs": BundleCase(
        lambda b: edit_metadata(b, class_names=[f"c{i}" for i in range(40)]),
        "metadata.json",
        "40 class names, but {bundle}/model.keras has 3 outputs",
    ),
    "a Lambda layer": BundleCase(
        lambda_bundle, "model.keras", "cannot load the model (it holds a Lambda layer"
    ),
    "an edited config.json": BundleCase(
        lambda b: edit_keras_config(b, b'"units": 3', b'"units": 7'),
        "model.keras",
        "cannot load the model (",
    ),
    "a truncated model.keras": BundleCase(
        lambda b: cut_in_half(b / "model.keras"),
        "model.keras",
        "the model file is unreadable or corrupt",
    ),
    "a garbage model.int8.tflite, --precision int8": BundleCase(
        lambda b: garbage_tflite(b, "model.int8.tflite"),
        "model.int8.tflite",
        "not a TensorFlow Lite model",
        precision="int8",
        commands=("predict", "classify", "evaluate"),
    ),
    "a garbage model.int8.tflite auto may use": BundleCase(
        lambda b: garbage_tflite(b, "model.int8.tflite"),
        "model.int8.tflite",
        "not a TensorFlow Lite model",
        commands=("classify",),  # some worker may have int8 units: checked in the driver
    ),
    "a garbage model.tflite": BundleCase(
        lambda b: garbage_tflite(b, "model.tflite"),
        "model.tflite",
        "not a TensorFlow Lite model",
        commands=("predict", "classify", "evaluate"),
    ),
    # Issue 9, and a bundle that is not one.
    "no model.keras": BundleCase(
        lambda b: (b / "model.keras").unlink(), "model.keras", "no such file"
    ),
    "metadata.json not JSON": BundleCase(
        lambda b: (b / "metadata.json").write_text("{not json"), "metadata.json", "invalid JSON"
    ),
    "metadata.json without its fields": BundleCase(
        lambda b: edit_metadata(b, image_size=0),
        "metadata.json",
        "image_size must be a whole number of pixels, not 0",
    ),
    "no metadata.json": BundleCase(
        lambda b: (b / "metadata.json").unlink(),
        "",
        "not a logo-batch model bundle (no metadata.json)",
    ),
}
PREFIX = {
    "predict": "logo-batch predict: error: ",
    "classify": "classify FAILED: ",
    "evaluate": "logo-batch evaluate: error: ",
    "quantize": "logo-batch quantize: error: ",
}


@pytest.fixture(scope="module")
def damaged_bundles(bundle, tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("damaged")
    made = {}
    for index, (case, damage) in enumerate(BUNDLES.items()):
        made[case] = Path(shutil.copytree(bundle, folder / f"b{index}"))
        damage.damage(made[case])
    return made


@pytest.mark.parametrize(
    ("case", "command"),
    [(case, command) for case in BUNDLES for command in BUNDLES[case].commands],
)
def test_a_damaged_bundle_is_one_line_naming_the_file(
    case, command, damaged_bundles, tmp_path, monkeypatch
):
    bundle = damaged_bundles[case]
    precision = BUNDLES[case].precision
    data = str(tmp_path / "data")  # never read: the bundle is checked first
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.jpg").write_bytes(noise_jpeg(1))
    _no_pipeline(monkeypatch)
    argv = {
        "predict": ["predict", str(bundle), str(tmp_path / "in" / "a.jpg")],
        "classify": [
            "classify",
            "--input",
            str(tmp_path / "in"),
            "--model",
            str(bundle),
            "--output",
            str(tmp_path / "o.csv"),
            *IN_PROCESS,
        ],  # fmt: skip
        "evaluate": ["evaluate", str(bundle), "--data-dir", data],
        "quantize": ["quantize", str(bundle), "--data-dir", data],
    }[command]
    if command != "quantize":
        argv += ["--precision", precision]
    before = snapshot(bundle)
    code, _, err = run_command(cli.main, argv)
    lines = refusal_lines(err)
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(PREFIX[command] + str(bundle / BUNDLES[case].file)), err
    assert BUNDLES[case].message.format(bundle=bundle) in lines[0]
    assert "not found" not in lines[0].lower()  # a file that is there is never "not found"
    assert snapshot(bundle) == before and not (tmp_path / "o.csv").exists()


class InputCase(NamedTuple):
    """``classify`` given odd inputs (``setup`` makes them, returns its arguments):
    its exit code, a text of what it says, whether it writes a header-only CSV (else
    nothing)."""

    setup: Callable[[Path], list[str]]
    code: int
    message: str
    header_only: bool


def _folder_of(*names: str) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        (tmp / "in").mkdir()
        for name in names:
            (tmp / "in" / name).write_bytes(b"not an image we read")
        return ["--input", str(tmp / "in")]

    return setup


def _list_of(text: str | None) -> Callable[[Path], list[str]]:
    def setup(tmp: Path) -> list[str]:
        if text is not None:
            (tmp / "list.txt").write_text(text)
        return ["--file-list", str(tmp / "list.txt")]

    return setup


INPUTS: dict[str, InputCase] = {
    # Issue 32, "Also": an empty input is an empty result; a missing one an error.
    "an empty folder": InputCase(
        _folder_of(), 0, "warning: no image files matched {tmp}/in (folder, recursive)", True
    ),
    "a folder of files that are not images": InputCase(
        _folder_of("notes.txt", "scan.tiff"), 0, "2 other files skipped", True
    ),
    "an empty file list": InputCase(
        _list_of("\n\n"), 0, "no image files matched {tmp}/list.txt (file list)", True
    ),
    "a missing folder": InputCase(
        lambda tmp: ["--input", str(tmp / "nowhere")],
        1,
        "--input {tmp}/nowhere: no such folder or file",
        False,
    ),
    "a missing file list": InputCase(
        _list_of(None), 1, "--file-list {tmp}/list.txt: no such file", False
    ),
}


@pytest.mark.parametrize("case", list(INPUTS))
def test_an_empty_or_missing_input(case, bundle, tmp_path):
    setup, expected_code, message, header_only = INPUTS[case]
    output = tmp_path / "out" / "rows.csv"
    argv = [*setup(tmp_path), "--model", str(bundle), "--output", str(output), *IN_PROCESS]
    code, out, err = run_command(_beam, argv)
    assert code == expected_code and "Traceback" not in err, err
    assert message.format(tmp=tmp_path) in out + err
    if header_only:
        assert output.read_text(encoding="utf-8") == ",".join(ROW_COLUMNS) + "\n"
    else:
        assert not output.exists()


# ===================================================== 4. reruns, killed runs, --checksum


def _run(folder, bundle, output, *extra, **config):
    config = job.JobConfig(input=str(folder), model=str(bundle), output=str(output), **config)
    return job.run_job(config, [*IN_PROCESS, *extra])


def test_checksum_reclassifies_a_file_changed_with_the_same_size_and_time(bundle, tmp_path):
    """Issue 32, "Also": --previous reuses the row of a file rewritten with the same size
    and modified time; with --checksum its content decides."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    output = tmp_path / "rows.csv"
    _run(folder, bundle, output, checksum=True)
    first = read_csv(output).set_index("path")
    victim = folder / "0.jpg"
    stat = victim.stat()
    data = victim.read_bytes()
    victim.write_bytes(data[:-3] + bytes(b ^ 0xFF for b in data[-3:-2]) + data[-2:])
    os.utime(victim, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size, same time
    assert victim.stat().st_size == stat.st_size
    plain = _run(folder, bundle, tmp_path / "plain.csv", previous=str(output))
    assert plain.reused == 3  # size and time alone cannot see the change
    checked = _run(folder, bundle, output, previous=str(output), checksum=True)
    assert checked.reused == 2 and "1 changed" in checked.reuse_note
    rows = read_csv(output).set_index("path")
    assert rows.loc[str(victim), "sha256"] != first.loc[str(victim), "sha256"]
    assert all(len(value) == 64 for value in rows.sha256)


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
    """Issue 9 (and 32: kill -9 left the old CSV intact)."""
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(6):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    output = tmp_path / "out" / "results.csv"
    output.parent.mkdir()
    _job_csv(output)  # an earlier output: the killed run must leave it as it is
    earlier = output.read_bytes()
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
    assert output.read_bytes() == earlier
    stale = _temp_folders(output)
    assert len(stale) == 1 and str(driver.pid) in stale[0].name
    # A live run's temporary folder (this process) must survive the next run.
    live = output.parent / f".{output.name}.tmp-{socket.gethostname()}-{os.getpid()}-0123456789ab"
    live.mkdir()
    summary = _run(folder, bundle, output, previous=str(output))
    assert summary.written == 6 and len(read_csv(output)) == 6
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


def test_rerun_with_fewer_shards_removes_the_old_shards(bundle, tmp_path, monkeypatch):
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

    # A run that fails at its last check leaves the earlier output as it was.
    def rows_missing(*args):
        raise job.ClassifyJobError("5 image files matched but 4 rows were written")

    monkeypatch.setattr(job, "check_shards", rows_missing)
    with pytest.raises(job.ClassifyJobError, match="4 rows were written"):
        _run(folder, bundle, out / "labels.csv", num_shards=2)
    monkeypatch.undo()
    assert sorted(out.iterdir()) == sorted(keep + three)
    # An empty input is an empty result, in as many shards as asked.
    (tmp_path / "empty").mkdir()
    _run(tmp_path / "empty", bundle, out / "labels.csv", num_shards=2)
    two = [out / f"labels-{i:05d}-of-00002.csv" for i in range(2)]
    assert sorted(out.iterdir()) == sorted(keep + two)
    assert [len(read_csv(path)) for path in two] == [0, 0]
    _run(folder, bundle, out / "labels.csv")
    assert sorted(out.iterdir()) == sorted([*keep, out / "labels.csv"])


# ================================ 5. the dataset builder: named, counted, or an error

# 27 * 6 training + 27 logo queries + 27 `none` + 3 duplicates = 219 images: two broken
# images (0.9 %) are under the default 1 % bound, three (1.4 %) are over it.
ARCHIVE_ARGS = {"images_per_class": 6, "query_per_class": 1, "image_size": 48, "seed": 0}


def test_a_manual_dir_without_the_archive_says_so_before_any_download(tmp_path):
    """Issue 32, "Also": the builder named the download's failure, not the missing file."""
    import tfds_flickr27
    from tfds_flickr27.download import MissingArchiveError

    manual = tmp_path / "manual"
    manual.mkdir()
    (manual / "flickr_logos_27_dataset (1).tar.gz").write_bytes(b"a copy, misnamed")
    with pytest.raises(MissingArchiveError) as caught:
        tfds_flickr27.build_dataset("crops", tmp_path / "data", manual_dir=manual)
    message = str(caught.value)
    assert f"expected {manual / tfds_flickr27.ARCHIVE_NAME}" in message
    assert "it holds flickr_logos_27_dataset (1).tar.gz" in message
    with pytest.raises(MissingArchiveError, match="it cannot be read"):
        tfds_flickr27.build_dataset("crops", tmp_path / "data", manual_dir=tmp_path / "absent")


@pytest.fixture(scope="module")
def base_archive(tmp_path_factory) -> tuple[Path, ArchiveContents]:
    from tfds_flickr27.synthetic import write_synthetic_archive

    path = write_synthetic_archive(tmp_path_factory.mktemp("base") / "base.tar.gz", **ARCHIVE_ARGS)
    return path, ArchiveContents(path)


def _build(manual_dir: Path, data_dir: Path, config: str, caplog):
    import tfds_flickr27

    with caplog.at_level(logging.INFO, logger="tfds_flickr27"):
        return tfds_flickr27.build_dataset(config, data_dir, manual_dir=manual_dir)


def _read_all(builder) -> dict[str, list[dict]]:
    """Every example of every split, images decoded the way TFDS decodes them."""
    import tensorflow_datasets as tfds

    return {
        split: list(tfds.as_numpy(builder.as_dataset(split=split))) for split in builder.info.splits
    }


def _log(caplog) -> str:
    return "\n".join(record.getMessage() for record in caplog.records)


def _images_dir() -> str:
    from tfds_flickr27.archive import IMAGES_ARCHIVE

    return IMAGES_ARCHIVE.removesuffix(".tar.gz")


@pytest.fixture(scope="module")
def broken_archive(base_archive, tmp_path_factory):
    """The base archive with a training and a query JPEG cut in half (headers intact)."""
    path, contents = base_archive
    bad = {contents.plain_training_image("Apple"), contents.query_image("Apple")}
    target = tmp_path_factory.mktemp("broken") / "broken.tar.gz"
    rewrite_archive(path, target, images={name: cut_in_scan(contents.images[name]) for name in bad})
    return as_manual_dir(target), contents, bad


@pytest.mark.parametrize("config", ["images", "crops"])
def test_broken_images_are_skipped_by_name_and_counted(broken_archive, config, tmp_path, caplog):
    import tensorflow_datasets as tfds

    import tfds_flickr27

    manual_dir, contents, bad = broken_archive
    archive_path = manual_dir / tfds_flickr27.ARCHIVE_NAME
    builder = _build(manual_dir, tmp_path, config, caplog)
    examples = _read_all(builder)  # decodes every image: a kept broken JPEG fails here

    names = {split: {e["filename"].decode() for e in rows} for split, rows in examples.items()}
    annotated = set(contents.training.labels)
    if config == "images":
        query_hashes = {contents.sha256[n] for n in contents.query}
        leaked = {n for n in annotated if contents.sha256[n] in query_hashes}
        assert names["train"] | names["validation"] == annotated - bad - leaked
        assert names["test"] == set(contents.query) - bad
    else:
        with_boxes = {b.filename for b in contents.training.boxes}
        assert set().union(*names.values()) == with_boxes - bad

    log = _log(caplog)
    for name in bad:  # each skip is logged naming the archive and the member
        assert any(
            str(archive_path) in line and f"{_images_dir()}/{name}" in line
            for line in log.splitlines()
        ), (name, log)
    # The count and the names are in the dataset info, also when read back from disk.
    again = tfds.builder(f"flickr_logos27/{config}", data_dir=tmp_path)
    skipped = again.info.metadata["skipped_images"]
    assert sorted(skipped) == sorted(f"{_images_dir()}/{name}" for name in bad)
    assert again.info.metadata["num_skipped_images"] == 2
    reason = skipped[f"{_images_dir()}/{contents.plain_training_image('Apple')}"]
    assert "truncated" in reason.lower(), reason


def test_too_many_broken_images_fail_the_build_naming_them(base_archive, tmp_path, caplog):
    import tfds_flickr27
    from tfds_flickr27 import archive as archive_lib

    path, contents = base_archive
    bad = [contents.plain_training_image(label) for label in ("Apple", "BMW", "Citroen")]
    target = rewrite_archive(
        path,
        tmp_path / "many.tar.gz",
        images={name: cut_in_scan(contents.images[name]) for name in bad},
    )
    manual_dir = as_manual_dir(target)
    with pytest.raises(archive_lib.ArchiveError) as error:
        _build(manual_dir, tmp_path / "data", "crops", caplog)
    message = str(error.value)
    assert str(manual_dir / tfds_flickr27.ARCHIVE_NAME) in message
    assert all(f"{_images_dir()}/{name}" in message for name in bad), message


ARCHIVE_IMAGES: dict[str, tuple[Callable[[bytes], bytes], str]] = {
    "garbage": (lambda data: b"not an image " * 40, "cannot identify"),
    "cut": (cut_in_scan, "truncated"),
    # The compressed data's second half zeroed: Pillow may decode it (to garbage),
    # TensorFlow's decoder (the trainer's) does not; either way it is unusable.
    "zeroed tail": (lambda data: cut_in_scan(data).ljust(len(data), b"\0"), "decode"),
}


@pytest.mark.parametrize("case", list(ARCHIVE_IMAGES))
def test_an_unreadable_archive_image_is_named_by_archive_and_member(base_archive, tmp_path, case):
    from tfds_flickr27 import archive as archive_lib

    damage, reason = ARCHIVE_IMAGES[case]
    path, contents = base_archive
    name = contents.query_image("BMW")
    target = rewrite_archive(
        path, tmp_path / "bad.tar.gz", images={name: damage(contents.images[name])}
    )
    index = archive_lib.scan(target)
    assert set(index.unusable) == {name}
    message = str(index.unusable[name])
    assert str(target) in message and f"{_images_dir()}/{name}" in message, message
    assert reason in message.lower(), message
    assert name not in index.size


def _read_everything(path: Path, contents: ArchiveContents) -> None:
    from tfds_flickr27 import archive as archive_lib

    archive_lib.scan(path)


def _stream_images(path: Path, contents: ArchiveContents) -> None:
    from tfds_flickr27 import archive as archive_lib

    for _ in archive_lib.iter_images(path, set(contents.images)):
        pass


CUT_ARCHIVES = {  # how the archive is cut, how it is read
    "outer cut in the middle, scanned": ("middle", _read_everything),
    "outer cut in the middle, streamed": ("middle", _stream_images),
    # Only the gzip trailer (CRC, length) is missing: every member reads in full, so
    # only reading to the end of the stream, as scan does, notices.
    "gzip trailer missing, scanned": ("gzip trailer", _read_everything),
    "images tarball cut, scanned": ("inner", _read_everything),
    "images tarball cut, streamed": ("inner", _stream_images),
}


@pytest.mark.parametrize("case", list(CUT_ARCHIVES))
def test_a_cut_archive_names_the_archive_and_the_member(base_archive, tmp_path, case):
    from tfds_flickr27 import archive as archive_lib
    from tfds_flickr27.archive import ROOT

    where, reader = CUT_ARCHIVES[case]
    path, contents = base_archive
    cut = tmp_path / "cut.tar.gz"
    data = path.read_bytes()
    if where == "inner":
        inner = dict(read_tar_gz(data))[images_member()]
        rewrite_archive(path, cut, inner_cut=len(inner) // 2)
    else:
        cut.write_bytes(data[: len(data) // 2] if where == "middle" else data[:-4])
    with pytest.raises(archive_lib.ArchiveError) as error:
        reader(cut, contents)
    message = str(error.value)
    assert str(cut) in message
    assert f"{ROOT}/" in message  # names the member being read (or the last one read)
    if where != "gzip trailer":
        assert images_member() in message and f"{_images_dir()}/" in message, message


def test_build_on_a_cut_archive_names_archive_and_member(base_archive, tmp_path, caplog):
    import tfds_flickr27
    from tfds_flickr27 import archive as archive_lib

    path, _ = base_archive
    data = path.read_bytes()
    cut = tmp_path / "cut.tar.gz"
    cut.write_bytes(data[: len(data) // 3])
    manual_dir = as_manual_dir(cut)
    with pytest.raises(archive_lib.ArchiveError) as error:
        _build(manual_dir, tmp_path / "data", "images", caplog)
    message = str(error.value)
    assert str(manual_dir / tfds_flickr27.ARCHIVE_NAME) in message and images_member() in message


@pytest.fixture(scope="module")
def odd_boxes(base_archive, tmp_path_factory):
    """Two extra training lines: a box far outside one image, one overhanging another."""
    from PIL import Image

    from tfds_flickr27 import annotations as ann

    path, contents = base_archive
    far = contents.plain_training_image("Apple")
    over = contents.plain_training_image("BMW")
    with Image.open(io.BytesIO(contents.images[over])) as image:
        width, height = image.size
    x1, y1 = width // 2, height // 3
    lines = contents.training_text.count("\r\n")
    suffix = (
        f"{far} Apple 1 90000 90000 90100 90100 \r\n"
        f"{over} BMW 1 {x1} {y1} {x1 + 5000} {y1 + 5000} \r\n"
    )
    target = tmp_path_factory.mktemp("boxes") / "boxes.tar.gz"
    rewrite_archive(path, target, training_suffix=suffix)
    clipped = ann.Box(over, "BMW", x1, y1, width, height)
    return (
        as_manual_dir(target),
        contents,
        {"far": (far, lines + 1), "over": (over, lines + 2, clipped, (width, height))},
    )


def test_box_outside_its_image_is_rejected_with_file_and_line(odd_boxes, tmp_path, caplog):
    from tfds_flickr27.archive import TRAINING_FILE

    manual_dir, contents, odd = odd_boxes
    far, far_line = odd["far"]
    builder = _build(manual_dir, tmp_path, "crops", caplog)
    crops = [e for rows in _read_all(builder).values() for e in rows]
    mine = [e for e in crops if e["filename"].decode() == far]
    own = [b for b in contents.training.boxes if b.filename == far]
    assert len(mine) == len(own)  # only its real boxes, no corner crop of the far one
    assert f"{TRAINING_FILE}:{far_line}" in _log(caplog)
    rejected = builder.info.metadata["rejected_boxes"]
    assert list(rejected) == [f"{TRAINING_FILE}:{far_line}"]
    assert builder.info.metadata["num_rejected_boxes"] == 1

    images = _build(manual_dir, tmp_path, "images", caplog)
    for rows in _read_all(images).values():
        for example in rows:
            if example["filename"].decode() == far:
                assert len(example["objects"]["label"]) == len(own)


def test_overhanging_box_is_clipped_to_its_image(odd_boxes, tmp_path, caplog):
    import numpy as np

    from tfds_flickr27.archive import TRAINING_FILE
    from tfds_flickr27.crops import crop_window

    manual_dir, _, odd = odd_boxes
    over, over_line, clipped, size = odd["over"]
    builder = _build(manual_dir, tmp_path, "crops", caplog)
    crops = [e for rows in _read_all(builder).values() for e in rows]
    expected = np.array([clipped.y1 / size[1], clipped.x1 / size[0], 1.0, 1.0], dtype=np.float32)
    mine = [e for e in crops if e["filename"] == over.encode()]
    match = [e for e in mine if np.allclose(e["bbox"], expected)]
    assert len(match) == 1, "the clipped box gives exactly one crop"
    left, top, right, bottom = crop_window(
        clipped, size, builder.builder_config.margin, builder.builder_config.square
    )
    assert match[0]["image"].shape[:2] == (bottom - top, right - left)
    assert f"{TRAINING_FILE}:{over_line}" in _log(caplog)
    assert list(builder.info.metadata["clipped_boxes"]) == [f"{TRAINING_FILE}:{over_line}"]


# ================= 6. a user's logo folder: each bad file or row skipped and named

BRANDS = ("Acme", "Bolt")
FRACTIONS = (0.7, 0.15, 0.15)


@pytest.fixture(scope="module")
def logo_folder(tmp_path_factory) -> Path:
    """4 crops and 6 photos (64 px, 2 of them with two logos) per brand, 2 none/ photos."""
    from tfds_logo_folder.synthetic import write_synthetic_folder

    folder = tmp_path_factory.mktemp("bad_input") / "base"
    return write_synthetic_folder(
        folder, BRANDS, crops_per_brand=4, photos_per_brand=6, none_photos=2, image_size=64
    )


# Each case changes the base folder and returns (report field, key, text in the reason).
LOGO_FILES: dict[str, Callable[[Path], tuple[str, str, str]]] = {
    "not a JPEG": lambda f: (
        "skipped_files",
        put(f, "crops/Acme/x.jpg", png()),
        "not a JPEG but PNG",
    ),
    "not an image": lambda f: ("skipped_files", put(f, "none/notes.jpg", b"hello"), "not a JPEG"),
    "truncated JPEG": lambda f: (
        "skipped_files",
        put(f, "crops/Bolt/cut.jpg", photo(f)[: len(photo(f)) // 2]),
        "decode",
    ),
    "its photo is skipped": lambda f: (
        "skipped_rows",
        put(f, "photos/broken.jpg", b"\xff\xd8broken") and add_row(f, "broken.jpg,Acme,1,1,9,9"),
        "its photo photos/broken.jpg is skipped",
    ),
    "box outside the photo": lambda f: (
        "rejected_boxes",
        add_row(f, "00_000.jpg,Acme,500,10,600,40"),
        "no pixel inside the",
    ),
    "box overhanging the photo": lambda f: (
        "clipped_boxes",
        add_row(f, "00_001.jpg,Acme,10,10,900,40"),
        "clipped to the",
    ),
    "zero-area box": lambda f: ("zero_area_boxes", add_row(f, "00_002.jpg,Acme,5,5,5,20"), "Acme"),
    "unknown file": lambda f: (
        "skipped_rows",
        add_row(f, "missing.jpg,Acme,1,1,9,9"),
        "unknown file: photos/missing.jpg is not in photos/",
    ),
    "too few fields": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,Acme,1,1,9"),
        "expected 6 fields, found 5",
    ),
    "not a number": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,Acme,1,one,9,9"),
        "must be numbers",
    ),
    "inverted box": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,Acme,9,1,1,9"),
        "box is not x1 <= x2",
    ),
    "empty brand": lambda f: ("skipped_rows", add_row(f, "00_000.jpg, ,1,1,9,9"), "empty brand"),
    "brand none": lambda f: (
        "skipped_rows",
        add_row(f, "00_000.jpg,None,1,1,9,9"),
        "no-logo label",
    ),
    "repeated row": lambda f: (
        "skipped_rows",
        add_row(f, (f / "boxes.csv").read_text().splitlines()[1]),
        "repeats the box of boxes.csv:2",
    ),
    "photo without a row": lambda f: (
        "skipped_files",
        put(f, "photos/unboxed.jpg", jpeg()),
        "no box in boxes.csv",
    ),
    "crop outside a brand folder": lambda f: (
        "skipped_files",
        put(f, "crops/loose.jpg", jpeg()),
        "not in a brand folder",
    ),
    "stray entry": lambda f: ("skipped_files", put(f, "README.txt", b"hi"), "ignored"),
    "none/ copy of a logo photo": lambda f: (
        "skipped_files",
        put(f, "none/copy.jpg", photo(f)),
        "byte-identical to photos/00_000.jpg",
    ),
    "brand spelled in another case": lambda f: (
        "spellings",
        add_row(f, "01_000.jpg,BOLT,1,1,20,20"),
        "'BOLT' is brand 'Bolt' (as in crops/Bolt/000.jpg)",
    ),
    "rotated by EXIF": lambda f: (
        "rotated",
        put(f, "none/turned.jpg", jpeg(exif_orientation=6)),
        "none/turned.jpg",
    ),
}
REPORTED = (
    "skipped_files", "skipped_rows", "rejected_boxes", "clipped_boxes", "zero_area_boxes",
    "spellings",
)  # fmt: skip
# What a case reports besides its own entry.
ALSO = {"its photo is skipped": {"photos/broken.jpg"}}


def _index(folder: Path, fractions=FRACTIONS):
    from tfds_logo_folder.layout import read_folder
    from tfds_logo_folder.plan import plan
    from tfds_logo_folder.scan import scan_files

    listing_ = read_folder(folder)
    return plan(listing_, scan_files(folder, listing_.files), fractions)


@pytest.mark.parametrize("case", sorted(LOGO_FILES))
def test_a_bad_logo_file_or_row_is_skipped_and_named(logo_folder, tmp_path, case):
    folder = shutil.copytree(logo_folder, tmp_path / "logos")
    field, key, reason = LOGO_FILES[case](folder)
    report = _index(folder).report
    if field == "rotated":
        assert report.rotated == [key]
    else:
        assert reason in getattr(report, field)[key]
    everything = {k for name in REPORTED for k in getattr(report, name)}
    assert everything - {key} == ALSO.get(case, set())  # the base folder is clean


LOGO_FOLDERS: dict[str, tuple[Callable[[Path], object], str]] = {
    "no header": (
        lambda f: (f / "boxes.csv").write_text("00_000.jpg,Acme,1,1,9,9\n"),
        "line 1 must be the header filename,brand,x1,y1,x2,y2",
    ),
    "not UTF-8": (
        lambda f: (f / "boxes.csv").write_bytes(b"filename,brand\n\xff\xfe\n"),
        "not UTF-8",
    ),
    "photos without boxes.csv": (lambda f: remove(f, "boxes.csv"), "there is no boxes.csv"),
    "nothing to learn": (lambda f: remove(f, "crops", "photos", "boxes.csv"), "no logos to learn"),
    "a brand with no training example": (  # with --split 0.5,0.25,0.25: Bolt's 2 crops
        lambda f: remove(f, "photos", "boxes.csv", "crops/Bolt/002.jpg", "crops/Bolt/003.jpg"),
        "no training example of 'Bolt'",
    ),
}


@pytest.mark.parametrize("case", sorted(LOGO_FOLDERS))
def test_a_logo_folder_that_cannot_be_built_is_an_error_naming_it(logo_folder, tmp_path, case):
    from tfds_logo_folder.layout import FolderError

    folder = shutil.copytree(logo_folder, tmp_path / "logos")
    change, message = LOGO_FOLDERS[case]
    change(folder)
    fractions = (0.5, 0.25, 0.25) if "training" in case else FRACTIONS
    with pytest.raises(FolderError, match=re.escape(message)):
        _index(folder, fractions)


def test_a_brand_too_small_for_every_split_is_reported(logo_folder, tmp_path):
    folder = shutil.copytree(logo_folder, tmp_path / "logos")
    put(folder, "crops/Tiny/only.jpg", jpeg())
    report = _index(folder).report
    assert report.missing["crops"]["Tiny"] == ["validation", "test"]
    assert report.missing["images"]["Tiny"] == ["train", "validation", "test"]


def test_an_exif_rotated_photo_is_stored_as_shown_with_its_box(logo_folder, tmp_path):
    import tensorflow_datasets as tfds

    folder = shutil.copytree(logo_folder, tmp_path / "logos")
    # stored 40 wide, 30 high; orientation 6 shows it turned: 30 wide, 40 high
    put(folder, "photos/turned.jpg", jpeg((40, 30), exif_orientation=6))
    where = add_row(folder, "turned.jpg,Acme,0,0,30,40")
    data_dir = tmp_path / "d"
    argv = ["dataset", "build", str(folder), "--name", "turned", "--data-dir", str(data_dir)]
    code, out, _ = run_command(cli.main, argv)
    assert code == 0 and "photos/turned.jpg" in out
    builder = tfds.builder("turned/images", data_dir=str(data_dir))
    for split in builder.info.splits:
        for example in tfds.as_numpy(builder.as_dataset(split=split)):
            if example["filename"] == b"photos/turned.jpg":
                assert example["image"].shape == (40, 30, 3)
                assert example["objects"]["bbox"].tolist() == [[0.0, 0.0, 1.0, 1.0]]
                return
    pytest.fail(f"photos/turned.jpg ({where}) not in turned/images")


def test_dataset_build_prints_every_skipped_file_and_line(logo_folder, tmp_path):
    folder = shutil.copytree(logo_folder, tmp_path / "logos")
    bad = put(folder, "crops/Acme/x.jpg", png())
    line = add_row(folder, "missing.jpg,Acme,1,1,9,9")
    for x2 in (900, 800):  # two boxes clipped to one: one crop
        add_row(folder, f"00_003.jpg,Acme,10,10,{x2},40")
    args = ["dataset", "build", str(folder), "--name", "bad", "--data-dir", str(tmp_path / "d")]
    code, out, _ = run_command(cli.main, args)
    assert code == 0
    assert "boxes clipped to their photo: 2" in out
    assert f"files skipped: 1\n  {bad}: not a JPEG but PNG" in out
    assert f"rows of boxes.csv skipped: 1\n  {line}: unknown file: photos/missing.jpg" in out
    code, _, err = run_command(cli.main, [*args[:2], str(tmp_path / "nowhere"), *args[3:]])
    assert code == 1 and "nowhere: not a folder" in err


# ============================ 7. a damaged prepared dataset, a damaged run folder


def _shards(data_dir: Path) -> list[Path]:
    return sorted(data_dir.glob("flickr_logos27/*/*/*.tfrecord-*"))


def _flip_in_first_record(path: Path) -> None:
    """One byte of the first record's data inverted: sizes intact, its CRC fails."""
    data = bytearray(path.read_bytes())
    length = int.from_bytes(data[:8], "little")
    data[12 + length // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DATASETS: dict[str, tuple[Callable[[Path], object], str]] = {  # damage, what the line says
    "a cut shard": (
        lambda d: [cut_in_half(path) for path in _shards(d)],
        "the prepared dataset is damaged: build it again",
    ),
    "a record failing its CRC": (
        lambda d: [_flip_in_first_record(path) for path in _shards(d)],
        "a record fails its check as it is read",
    ),
    "no dataset_info.json": (
        lambda d: [path.unlink() for path in d.glob("flickr_logos27/*/*/dataset_info.json")],
        "dataset_info.json: missing",
    ),
}
TINY_TRAIN = [
    "--backbone", "tiny_cnn", "--weights", "none", "--image-size", "32", "--epochs", "1",
    "--fine-tune-epochs", "0", "--batch-size", "16", "--steps-per-epoch", "2", "--crops-only",
    "--mixed-precision", "off",
]  # fmt: skip


@pytest.fixture(scope="module")
def dataset_bundle(tmp_path_factory) -> Path:
    """A tiny bundle of the dataset's classes: evaluate and quantize read the data."""
    from tfds_flickr27 import CLASS_NAMES

    return make_bundle(tmp_path_factory.mktemp("bundle27") / "tiny", list(CLASS_NAMES))


@pytest.mark.parametrize("command", ["train", "evaluate", "quantize"])
@pytest.mark.parametrize("case", list(DATASETS))
def test_a_damaged_prepared_dataset_is_one_line_naming_the_file(
    case, command, synthetic_data_dir, dataset_bundle, tmp_path
):
    data = Path(shutil.copytree(synthetic_data_dir, tmp_path / "data"))
    damage, message = DATASETS[case]
    damage(data)
    argv = {
        "train": ["train", "--output-dir", str(tmp_path / "run"), *TINY_TRAIN],
        "evaluate": ["evaluate", str(dataset_bundle), "--config", "crops"],
        "quantize": ["quantize", str(dataset_bundle), "--calibration", "4"],
    }[command] + ["--data-dir", str(data)]
    before = snapshot(dataset_bundle)
    code, _, err = run_command(cli.main, argv)
    lines = refusal_lines(err)
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"logo-batch {command}: error: {data}/flickr_logos27/"), err
    assert message in lines[0]
    assert snapshot(dataset_bundle) == before


@pytest.fixture(scope="module")
def finished_run(synthetic_data_dir, tmp_path_factory):
    """A finished tiny run: its config and folder (copied before each damage)."""
    from training_support import tiny_config

    from logo_batch.training import train

    folder = tmp_path_factory.mktemp("finished") / "run"
    config = tiny_config(
        synthetic_data_dir, folder, epochs=1, fine_tune_epochs=1, steps_per_epoch=2, batch_size=16
    )
    train(config)
    return config, folder


def replace_output(config, run: Path):
    import dataclasses

    return dataclasses.replace(config, output_dir=str(run))


def _state(run: Path) -> dict:
    return json.loads((run / "state.json").read_text(encoding="utf-8"))


def _unfinished(run: Path) -> None:
    """As if killed after its last phase's weights were written, before the export."""
    state = _state(run)
    state.pop("finished", None)
    (run / "state.json").write_text(json.dumps(state), encoding="utf-8")


RUN_FOLDERS: dict[str, tuple[Callable[[Path], object], str]] = {
    # state.json damaged: an error naming it (the run cannot know what it had done).
    "state.json cut": (lambda r: cut_in_half(r / "state.json"), "corrupt run state"),
    "state.json not UTF-8": (
        lambda r: (r / "state.json").write_bytes(b'{"completed": "\xff"}'),
        "corrupt run state",
    ),
    "state.json a list": (lambda r: (r / "state.json").write_text("[]"), "corrupt run state"),
}


@pytest.mark.parametrize("case", list(RUN_FOLDERS))
def test_a_damaged_run_state_is_one_line_naming_it(case, finished_run, tmp_path):
    config, folder = finished_run
    run = Path(shutil.copytree(folder, tmp_path / "run"))
    damage, message = RUN_FOLDERS[case]
    damage(run)
    before = snapshot(run)
    argv = ["train", "--data-dir", config.data_dir, "--output-dir", str(run), *TINY_TRAIN]
    code, _, err = run_command(cli.main, argv)
    lines = refusal_lines(err)
    assert code == 1 and len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith(f"logo-batch train: error: {run / 'state.json'}: {message}")
    assert snapshot(run) == before


def test_a_finished_run_with_damaged_outputs_redoes_its_export(finished_run, tmp_path):
    """metrics.json and the bundle's model cut short: the rerun trains nothing and
    writes them again (the trained weights are in the run folder)."""
    from training_support import Record

    from logo_batch.inference.bundle import load_bundle
    from logo_batch.training import train

    config, folder = finished_run
    run = Path(shutil.copytree(folder, tmp_path / "run"))
    metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    cut_in_half(run / "metrics.json")
    cut_in_half(run / "bundle" / "model.keras")
    epochs = Record()
    result = train(replace_output(config, run), callbacks=[epochs])
    assert epochs.epochs == []  # nothing trained again
    assert json.loads((run / "metrics.json").read_text(encoding="utf-8")) == metrics
    assert result.metrics == metrics
    load_bundle(run / "bundle")  # whole again


def test_a_run_killed_while_writing_weights_runs_that_phase_again(finished_run, tmp_path):
    """The fine-tune phase's final weights and its backup cut short (a kill while Keras
    wrote them): that phase runs again from its start, the head phase stays done."""
    from training_support import Record

    from logo_batch.training import train

    config, folder = finished_run
    run = Path(shutil.copytree(folder, tmp_path / "run"))
    _unfinished(run)
    cut_in_half(run / "checkpoints" / "fine_tune_end.weights.h5")
    backup = run / "backup" / "fine_tune"
    backup.mkdir(parents=True, exist_ok=True)
    (backup / "training_metadata.json").write_text('{"epoch": ')  # cut short
    epochs = Record()
    result = train(replace_output(config, run), callbacks=[epochs])
    # The fine-tune phase's one epoch from its start (the head's epochs are behind it);
    # the backup restored would have failed to read.
    assert epochs.epochs == [config.epochs]
    assert list(result.phases) == ["head", "fine_tune"]
    assert _state(run).get("finished") is True


# ========================================== 8. odd but valid: what must keep working


def test_an_explicit_glob_still_globs(bundle, tmp_path):
    for name in ("photos1", "photos2", "other"):
        (tmp_path / "in" / name).mkdir(parents=True)
        (tmp_path / "in" / name / "x.jpg").write_bytes(noise_jpeg(len(name)))
        (tmp_path / "in" / name / "y.png").write_bytes(gray_png())
    _run(f"{tmp_path}/in/photos[12]/*.jpg", bundle, tmp_path / "out.csv")
    rows = read_csv(tmp_path / "out.csv")
    assert list(rows.path) == [f"{tmp_path}/in/photos{i}/x.jpg" for i in (1, 2)]


def test_the_listing_reports_a_folder_it_cannot_read(tmp_path, monkeypatch):
    """As root permissions are not enforced: os.scandir refuses one folder instead."""
    (tmp_path / "ok").mkdir()
    (tmp_path / "ok" / "a.jpg").write_bytes(b"x")
    (tmp_path / LOCKED / "inner").mkdir(parents=True)
    (tmp_path / LOCKED / "b.jpg").write_bytes(b"x")
    _locked_listing(monkeypatch, tmp_path)
    listed = sorted(
        (entry.path, entry.error) for entry in listing.list_local_entries(str(tmp_path))
    )
    assert listed == [(str(tmp_path / LOCKED), DENIED), (str(tmp_path / "ok" / "a.jpg"), "")]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o755), (0o027, 0o750)])
def test_a_bundle_folder_respects_the_umask(tmp_path, umask, mode):
    import keras

    from logo_batch.inference.bundle import BundleMetadata, save_bundle

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.Dense(2)(inputs))
    metadata = BundleMetadata(class_names=["a", "b"], image_size=4, backbone="tiny")
    old = os.umask(umask)
    try:
        path = save_bundle(model, metadata, tmp_path / "bundle", export_serving=False)
    finally:
        os.umask(old)
    assert (path.stat().st_mode & 0o777) == mode


def test_options_accept_dash_and_underscore_spellings(bundle, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(3):
        (folder / f"{i}.jpg").write_bytes(noise_jpeg(i))
    out = tmp_path / "out"
    argv = ["--input", str(folder), "--model", str(bundle)]
    argv += ["--num-shards", "2", "--top-k", "2", "--batch-size", "2", "--max-error-fraction", "0"]
    assert run_command(_beam, [*argv, "--output", str(out / "a.csv"), *IN_PROCESS])[0] == 0
    rows = [read_csv(out / f"a-{i:05d}-of-00002.csv") for i in range(2)]
    assert sum(len(r) for r in rows) == 3
    assert all(len(labels.split(";")) == 2 for r in rows for labels in r.top_labels)
    # `python -m beam_jobs.classify_images` (main) takes the same spellings.
    code = run_command(classify_images.main, [*argv, "--output", str(out / "b.csv"), *IN_PROCESS])
    assert code[0] == 0 and len(list(out.glob("b-*-of-00002.csv"))) == 2
    # predict takes the underscore spelling too.
    image = str(folder / "0.jpg")
    predict = ["predict", str(bundle), image]
    code, out_text, _ = run_command(cli.main, [*predict, "--top_k", "1", "--format", "csv"])
    header, row = out_text.strip().splitlines()
    assert code == 0 and header.startswith("path,") and len(row.split(",")[3].split(";")) == 1
    assert run_command(cli.main, [*predict, "--batch_size", "1", "--min_score", "0"])[0] == 0


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
