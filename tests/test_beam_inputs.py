"""Inputs of the Beam job: file lists (text, CSV, compressed, relative paths), several
inputs in one run, paths named twice, listed files that are missing."""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import pytest
from beam_support import IN_PROCESS, make_bundle, read_csv
from image_files import gray_png, noise_jpeg

from beam_jobs import file_lists, job
from beam_jobs.errors import ClassifyJobError
from beam_jobs.file_facts import format_modified
from beam_jobs.inputs import FileListSpec, resolve_file_list, resolve_inputs
from logo_batch import cli
from logo_batch.result_csv import ROW_COLUMNS


@pytest.fixture(scope="module")
def bundle(tmp_path_factory) -> Path:
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def _listed(list_path: Path) -> list[tuple[str, str]]:
    spec = resolve_file_list(str(list_path))
    return [(item.path, item.error) for item in file_lists.listed_paths(spec)]


# ------------------------------------------------------------ reading lists


def test_text_list_relative_paths_blank_lines_crlf_and_uris(tmp_path):
    (tmp_path / "lists").mkdir()
    text = "a.jpg\r\n\n   \n../photos/b.png\n/abs/c.jpg\ngs://bucket/d.jpg\nfile:///x/e.jpg\n"
    text += " spaced name.jpg\nlast.jpg"  # no newline at the end
    (tmp_path / "lists" / "files.txt").write_text(text)
    assert _listed(tmp_path / "lists" / "files.txt") == [
        (str(tmp_path / "lists" / "a.jpg"), ""),  # relative to the list's folder
        (str(tmp_path / "photos" / "b.png"), ""),
        ("/abs/c.jpg", ""),
        ("gs://bucket/d.jpg", ""),
        ("/x/e.jpg", ""),
        (str(tmp_path / "lists" / " spaced name.jpg"), ""),  # taken as written
        (str(tmp_path / "lists" / "last.jpg"), ""),
    ]


def test_csv_list_path_column_quoting_bom_and_rows_without_a_path(tmp_path):
    lst = tmp_path / "photos.csv"
    lst.write_text(
        "\ufeffid,PATH,note\n1,a.jpg,x\n\n"
        '2,"with, comma.jpg",y\n3,,no path here\n,,\n4,/abs/b.jpg\n',
        encoding="utf-8",
    )
    assert _listed(lst) == [
        (str(tmp_path / "a.jpg"), ""),
        (str(tmp_path / "with, comma.jpg"), ""),
        (f"{lst}:5", "row 5 of the file list has no path"),
        ("/abs/b.jpg", ""),
    ]


def test_csv_list_without_a_path_header_uses_the_first_column(tmp_path):
    lst = tmp_path / "plain.csv"
    lst.write_text("first.jpg,label\nsecond.jpg,other\n")
    assert _listed(lst) == [(str(tmp_path / "first.jpg"), ""), (str(tmp_path / "second.jpg"), "")]


def test_compressed_lists_are_read_by_their_extension(tmp_path):
    with gzip.open(tmp_path / "files.txt.gz", "wt") as handle:
        handle.write("a.jpg\nb.jpg\n")
    with gzip.open(tmp_path / "files.csv.gz", "wt") as handle:
        handle.write("path\nc.jpg\n")
    assert [p for p, _ in _listed(tmp_path / "files.txt.gz")] == [
        str(tmp_path / "a.jpg"),
        str(tmp_path / "b.jpg"),
    ]
    assert [p for p, _ in _listed(tmp_path / "files.csv.gz")] == [str(tmp_path / "c.jpg")]
    assert file_lists.is_csv_list("gs://b/x.CSV") and not file_lists.is_csv_list("x.csv.txt")


def test_a_list_that_breaks_midway_gives_a_row_for_the_list(tmp_path):
    names = [f"photo_{i:05d}.jpg" for i in range(5000)]
    packed = gzip.compress("".join(f"{name}\n" for name in names).encode())
    (tmp_path / "cut.txt.gz").write_bytes(packed[: len(packed) // 2])  # a truncated copy
    listed = _listed(tmp_path / "cut.txt.gz")
    *read, (path, error) = listed
    assert read == [(str(tmp_path / name), "") for name in names[: len(read)]]
    assert path == str(tmp_path / "cut.txt.gz")
    assert error.startswith(f"cannot read the file list after line {len(read)}:"), error


def test_remote_list_relative_paths_join_its_folder():
    spec = FileListSpec("gs://bucket/lists/run.txt", False)
    assert file_lists.resolve_listed("./x/a.jpg", spec) == ("gs://bucket/lists/x/a.jpg", False)
    assert file_lists.resolve_listed("s3://o/b.jpg", spec) == ("s3://o/b.jpg", False)


def test_missing_or_folder_list_fails_naming_it(tmp_path):
    with pytest.raises(ClassifyJobError, match=r"--file-list .*nope\.txt: no such file"):
        resolve_file_list(str(tmp_path / "nope.txt"))
    with pytest.raises(ClassifyJobError, match="a folder, not a file list"):
        resolve_file_list(str(tmp_path))
    with pytest.raises(ClassifyJobError, match="give --input and/or --file-list"):
        resolve_inputs([], [])


# ------------------------------------------------------------ runs


@pytest.fixture
def photo_tree(tmp_path) -> Path:
    """folder/ holds a.jpg b.png sub/c.jpg; lists/ holds lists naming some of them."""
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "a.jpg").write_bytes(noise_jpeg(1))
    (folder / "b.png").write_bytes(gray_png())
    (folder / "sub" / "c.jpg").write_bytes(noise_jpeg(2))
    other = tmp_path / "other"
    other.mkdir()
    (other / "d.jpg").write_bytes(noise_jpeg(3))
    (other / "e.jpg").write_bytes(noise_jpeg(4))
    lists = tmp_path / "lists"
    lists.mkdir()
    # Relative to lists/; a.jpg is also in the folder input, d.jpg is named twice.
    (lists / "some.txt").write_text("../folder/a.jpg\n../other/d.jpg\n../other/d.jpg\n")
    (lists / "more.csv").write_text(
        f"label,path\nx,{other / 'e.jpg'}\ny,../other/gone.jpg\nz,./../other/d.jpg\n"
    )
    return tmp_path


def test_folder_and_lists_in_one_run_each_file_once(bundle, photo_tree):
    output = photo_tree / "out.csv"
    config = job.JobConfig(
        input=str(photo_tree / "folder"),
        file_list=[str(photo_tree / "lists" / "some.txt"), str(photo_tree / "lists" / "more.csv")],
        model=str(bundle),
        output=str(output),
        batch_size=2,
    )
    summary = job.run_job(config, IN_PROCESS)
    rows = read_csv(output).set_index("path")
    assert tuple(rows.reset_index().columns) == ROW_COLUMNS
    good = ["folder/a.jpg", "folder/b.png", "folder/sub/c.jpg", "other/d.jpg", "other/e.jpg"]
    gone = str(photo_tree / "other" / "gone.jpg")
    assert sorted(rows.index) == sorted([str(photo_tree / p) for p in good] + [gone])
    more = photo_tree / "lists" / "more.csv"
    assert rows.loc[gone, "error"] == f"no such file (listed in {more})"
    assert rows.loc[gone, "size"] == "" and rows.loc[gone, "label"] == ""
    for name in good:  # each file's facts, as its stat gives them
        info = os.stat(photo_tree / name)
        row = rows.loc[str(photo_tree / name)]
        assert row["error"] == "" and row["label"] != ""
        assert row["size"] == str(info.st_size)
        assert row["modified"] == format_modified(info.st_mtime_ns // 1000)
    assert (summary.matched, summary.written, summary.failed) == (6, 6, 1)
    # a.jpg (folder + list) and d.jpg (3 times): read once each.
    assert summary.metrics["images_read"] == 5
    assert summary.metrics["duplicate_entries"] == 3
    assert summary.metrics["listing_errors"] == 1
    assert len(set(rows["fingerprint"])) == 1 and len(rows["fingerprint"].iloc[0]) == 16


def test_cli_takes_several_inputs_and_lists(bundle, photo_tree, capsys):
    output = photo_tree / "cli.csv"
    argv = ["classify", "--model", str(bundle), "--output", str(output), "--progress-interval", "0"]
    argv += ["--input", str(photo_tree / "folder" / "sub"), str(photo_tree / "other" / "e.jpg")]
    argv += ["--file-list", str(photo_tree / "lists" / "some.txt")]
    assert cli.main([*argv, *IN_PROCESS]) == 0
    out = capsys.readouterr().out
    assert "(folder, recursive) + " in out and "some.txt (file list)" in out
    assert "classify: 4 image files matched, 4 classified, 0 failed" in out
    names = {os.path.relpath(p, photo_tree) for p in read_csv(output)["path"]}
    assert names == {"folder/sub/c.jpg", "other/e.jpg", "folder/a.jpg", "other/d.jpg"}
