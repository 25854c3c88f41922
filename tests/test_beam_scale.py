"""Output that scales: the shard-count rule, sorted files written with bounded memory, the
one sorted file on request, and the driver's check from the writers' counts."""

from __future__ import annotations

import csv
import json
import os

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from beam_support import IN_PROCESS, count_csv_rows, make_bundle, read_csv
from image_files import noise_jpeg

from beam_jobs import bundle_shards, hash_shards, job, shards, sorted_csv
from beam_jobs.errors import ClassifyJobError
from beam_jobs.manifest import MANIFEST_FILE, WriteManifest, check_shards
from beam_jobs.shards import AUTO_SHARDS, shard_count
from logo_batch.inference.predict import error_prediction
from logo_batch.result_csv import ROW_COLUMNS


def _rows(count: int, bad_every: int = 4) -> list[dict[str, str]]:
    """Rows of ``count`` paths in a scrambled order; every ``bad_every``-th is an error."""
    rows = []
    for i in range(count):
        number = (i * 7919) % count  # a permutation: the order is not the sorted one
        row = error_prediction(f"/photos/{number:04d}.jpg", "corrupt" if i % bad_every else "")
        rows.append({column: row.to_row().get(column, "") for column in ROW_COLUMNS})
    return rows


def _read_paths(path) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [row["path"] for row in csv.DictReader(handle)]


def _pipeline() -> test_pipeline.TestPipeline:
    return test_pipeline.TestPipeline(runner=FnApiRunner())  # in process; never Prism


def test_the_shard_count_follows_the_rows_unless_given():
    assert [shard_count(n, rows_per_shard=10) for n in (0, 1, 10, 11, 20, 21)] == [
        1, 1, 1, 2, 2, 3,
    ]  # fmt: skip
    assert shard_count(5, 7, rows_per_shard=10) == 7  # given: as given
    assert shard_count(10**9) == 10**9 // shards.ROWS_PER_SHARD
    assert shards.parse_num_shards("auto") == AUTO_SHARDS
    assert shards.parse_num_shards("3") == 3
    for bad in ("0", "-2", "many"):
        with pytest.raises(ValueError, match="auto or a whole number"):
            shards.parse_num_shards(bad)


@pytest.mark.parametrize("buffer_rows", [1, 3, 1000])
def test_a_sorted_file_is_the_same_whatever_the_memory_it_may_use(tmp_path, buffer_rows):
    rows = _rows(23)
    path = tmp_path / "out.csv"
    assert sorted_csv.write_sorted_csv(str(path), rows, ROW_COLUMNS, buffer_rows=buffer_rows) == (
        23,
        sum(bool(row["error"]) for row in rows),
    )
    assert _read_paths(path) == sorted(row["path"] for row in rows)
    reference = tmp_path / "reference.csv"
    with open(reference, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=ROW_COLUMNS)
        writer.writeheader()
        writer.writerows(sorted(rows, key=lambda row: row["path"]))
    assert path.read_bytes() == reference.read_bytes()  # what csv.DictWriter writes


def _sorted_parts(folder, rows: list[dict], parts: int) -> list[str]:
    """``rows`` dealt into ``parts`` sorted CSV files in ``folder``; their paths."""
    sources = []
    for part in range(parts):
        source = folder / f"part{part}.csv"
        sorted_csv.write_sorted_csv(str(source), rows[part::parts], ROW_COLUMNS)
        sources.append(str(source))
    return sources


def test_a_merge_of_many_files_takes_passes_and_keeps_every_row(tmp_path, monkeypatch):
    monkeypatch.setattr(sorted_csv, "MERGE_FAN_IN", 2)  # 5 inputs: merged in passes
    rows = _rows(31)
    sources = _sorted_parts(tmp_path, rows, 5)
    merged = tmp_path / "merged.csv"
    errors = sum(bool(row["error"]) for row in rows)
    assert sorted_csv.merge_sorted_csvs(sources, str(merged), ROW_COLUMNS) == (31, errors)
    assert _read_paths(merged) == sorted(row["path"] for row in rows)
    (tmp_path / "other.csv").write_text("path,label\n/a.jpg,x\n")
    with pytest.raises(ValueError, match="is not the columns"):
        sorted_csv.merge_sorted_csvs([str(tmp_path / "other.csv")], str(merged), ROW_COLUMNS)


def test_a_merge_in_passes_deletes_each_pass_s_runs_once_merged(tmp_path, monkeypatch):
    """9 inputs, 2 at a time: passes of 5, 3 and 2 runs. Kept to the end they would be 10
    runs in the scratch folder; deleted once merged, at most 6 (a pass's 5 and one new)."""
    monkeypatch.setattr(sorted_csv, "MERGE_FAN_IN", 2)
    rows = _rows(45)
    sources = _sorted_parts(tmp_path, rows, 9)
    write_run, seen = sorted_csv._write_run, []

    def counting_write_run(folder, records):
        path = write_run(folder, records)
        seen.append(len(os.listdir(folder)))
        return path

    monkeypatch.setattr(sorted_csv, "_write_run", counting_write_run)
    merged = tmp_path / "merged.csv"
    assert sorted_csv.merge_sorted_csvs(sources, str(merged), ROW_COLUMNS)[0] == 45
    assert _read_paths(merged) == sorted(row["path"] for row in rows)
    assert len(seen) == 5 + 3 + 2 and max(seen) == 6
    assert all(os.path.exists(source) for source in sources)  # the inputs are not runs
    # A writer's own spilled runs (9 runs of 5 rows) are deleted as they are merged too:
    # at most its 9 and one new (kept, the passes would leave 9 + 5 + 3 + 2 = 19).
    seen.clear()
    out = tmp_path / "written.csv"
    sorted_csv.write_sorted_csv(str(out), rows, ROW_COLUMNS, buffer_rows=5)
    assert _read_paths(out) == sorted(row["path"] for row in rows)
    assert seen[:9] == list(range(1, 10)) and max(seen) == 10


def test_a_row_with_an_unknown_column_is_refused(tmp_path):
    row = {**_rows(1)[0], "surprise": "x"}
    with pytest.raises(ValueError, match="surprise"):
        sorted_csv.write_sorted_csv(str(tmp_path / "x.csv"), [row], ROW_COLUMNS)


def _write(tmp_path, rows, **options) -> dict:
    manifest_path = str(tmp_path / MANIFEST_FILE)
    with _pipeline() as p:
        matched = p | "Matched" >> beam.Create([len(rows)])
        written = (
            p
            | beam.Create(rows)
            | hash_shards.WriteCsvShards(str(tmp_path), row_count=matched, **options)
        )
        _ = written | WriteManifest(matched, manifest_path)
    return json.loads((tmp_path / MANIFEST_FILE).read_text())


def test_auto_shards_one_per_rows_per_shard_rows_each_sorted(tmp_path):
    rows = _rows(10)
    manifest = _write(tmp_path, rows, rows_per_shard=3)
    assert manifest["num_shards"] == 4  # ceil(10 / 3)
    names = [shards.shard_name(i, 4) for i in range(4)]
    assert sorted(manifest["shards"]) == names  # every shard, even one no row hashed to
    seen = []
    for name in names:
        paths = _read_paths(tmp_path / name)
        assert paths == sorted(paths)
        assert count_csv_rows(tmp_path / name)[0] == manifest["shards"][name]["rows"]
        seen += paths
    assert sorted(seen) == sorted(row["path"] for row in rows)  # each row once
    checked = check_shards(str(tmp_path), manifest)
    assert (checked.rows, checked.errors) == (10, sum(bool(row["error"]) for row in rows))


def _write_in_bundles(tmp_path, *branches, **options) -> dict:
    manifest_path = str(tmp_path / MANIFEST_FILE)
    with _pipeline() as p:
        matched = p | "Matched" >> beam.Create([sum(len(rows) for rows in branches)])
        pcolls = tuple(
            p | f"Rows{index}" >> beam.Create(rows) for index, rows in enumerate(branches)
        )
        written = pcolls | bundle_shards.WriteBundleShards(str(tmp_path), **options)
        _ = written | WriteManifest(matched, manifest_path)
    return json.loads((tmp_path / MANIFEST_FILE).read_text())


def test_a_bundle_writer_rolls_over_every_rows_per_shard_rows_and_reports_each_file(tmp_path):
    rows = _rows(10)
    fn = bundle_shards._WriteBundleShardsFn(str(tmp_path), ROW_COLUMNS, 3, buffer_rows=2)
    fn.start_bundle()
    rolled = [written for row in rows for written in fn.process(row)]
    last = [windowed.value for windowed in fn.finish_bundle()]
    assert [w.rows for w in rolled] == [3, 3, 3] and [w.rows for w in last] == [1]
    seen = []
    for written in rolled + last:
        paths = _read_paths(tmp_path / written.name)
        assert paths == sorted(paths)  # each file sorted (spilled runs of 2 rows merged)
        assert count_csv_rows(tmp_path / written.name) == (written.rows, written.errors)
        assert (tmp_path / written.name).stat().st_size == written.size
        seen += paths
    assert sorted(seen) == sorted(row["path"] for row in rows)  # every row once
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(w.name for w in rolled + last)
    fn.start_bundle()  # a bundle without rows writes nothing
    assert list(fn.finish_bundle()) == []


def test_part_filled_files_are_packed_into_shards_of_at_most_rows_per_shard():
    written = [shards.ShardWritten(f"rows-{n}", rows, 0, 1) for n, rows in
               enumerate([10, 7, 4, 3, 2, 10, 1])]  # fmt: skip
    packs: dict[str, list[int]] = {}
    for pack, shard in bundle_shards.pack_shards(written, rows_per_shard=10):
        packs.setdefault(pack, []).append(shard.rows)
    assert sorted(sum(rows) for rows in packs.values()) == [7, 10, 10, 10]  # 37 rows, 4 files
    assert packs["rows-0"] == [10] and packs["rows-5"] == [10]  # full files stay as they are
    one = {pack for pack, _ in bundle_shards.pack_shards(written, 10, one_file=True)}
    assert len(one) == 1


def test_rows_written_where_they_are_give_every_row_once_in_sorted_shards(tmp_path):
    classified, reused = _rows(11), _rows(40)[11:20]
    manifest = _write_in_bundles(tmp_path, classified, reused, rows_per_shard=4)
    assert manifest["matched"] == 20
    assert all(shard["rows"] <= 4 for shard in manifest["shards"].values())
    checked = check_shards(str(tmp_path), manifest)
    assert checked.rows == 20 == sum(shard["rows"] for shard in manifest["shards"].values())
    seen = []
    for path in checked.paths:
        paths = _read_paths(path)
        assert paths == sorted(paths)
        seen += paths
    assert sorted(seen) == sorted(row["path"] for row in classified + reused)
    errors = sum(bool(row["error"]) for row in classified + reused)
    assert checked.errors == errors


def test_one_sorted_file_on_request_is_merged_from_the_writers_files(tmp_path):
    rows = _rows(17)
    manifest = _write_in_bundles(tmp_path, rows, one_file=True, rows_per_shard=4)
    assert manifest["num_shards"] == 1
    (name,) = manifest["shards"]
    assert _read_paths(tmp_path / name) == sorted(row["path"] for row in rows)
    assert manifest["shards"][name]["rows"] == 17
    assert len(list(tmp_path.glob("rows-*.csv"))) >= 1 + 5  # ceil(17 / 4) files merged


def test_the_driver_check_ignores_files_no_writer_reported(tmp_path):
    manifest = _write_in_bundles(tmp_path, _rows(6), rows_per_shard=4)
    (tmp_path / "rows-0123456789ab-00000.csv").write_text("a failed bundle's file")
    checked = check_shards(str(tmp_path), manifest)
    assert checked.rows == 6 and len(checked.paths) == len(manifest["shards"])
    (tmp_path / sorted(manifest["shards"])[0]).unlink()
    with pytest.raises(ClassifyJobError, match="the writer reported it, but it is gone"):
        check_shards(str(tmp_path), manifest)


def test_the_driver_check_names_a_shard_no_writer_reported(tmp_path):
    manifest = _write(tmp_path, _rows(5), num_shards=2)
    del manifest["shards"][shards.shard_name(1, 2)]
    with pytest.raises(ClassifyJobError, match="shard-00001-of-00002.csv: no writer reported it"):
        check_shards(str(tmp_path), manifest)
    manifest = _write(tmp_path, _rows(5), num_shards=2)
    (tmp_path / shards.shard_name(0, 2)).unlink()
    with pytest.raises(ClassifyJobError, match="shard-00000-of-00002.csv: the writer reported"):
        check_shards(str(tmp_path), manifest)


@pytest.fixture(scope="module")
def folder_of_seven(tmp_path_factory):
    root = tmp_path_factory.mktemp("seven")
    for i in range(7):
        (root / f"img{i}.jpg").write_bytes(noise_jpeg(i))
    return root, make_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


def test_the_job_writes_as_many_shards_as_the_rows_need(folder_of_seven, tmp_path):
    root, bundle = folder_of_seven
    output = tmp_path / "out" / "r.csv"
    config = job.JobConfig(
        input=str(root), model=str(bundle), output=str(output), rows_per_shard=3, batch_size=2
    )
    summary = job.run_job(config, IN_PROCESS)
    finals = [output.parent / f"r-{i:05d}-of-00003.csv" for i in range(3)]  # ceil(7 / 3)
    assert summary.outputs == [str(path) for path in finals]
    manifest = output.parent / "r.manifest.json"  # the run's manifest
    assert sorted(output.parent.iterdir()) == sorted([*finals, manifest])  # no temp folder
    paths = [path for final in finals for path in read_csv(final)["path"]]
    assert sorted(paths) == sorted(str(p) for p in root.iterdir())
    assert summary.written == summary.matched == 7
    # Asked for one file: the same rows, sorted, at the output path; the shards of the
    # earlier run (another shard count) are removed at the move.
    config.num_shards = 1
    summary = job.run_job(config, IN_PROCESS)
    assert sorted(output.parent.iterdir()) == sorted([output, output.parent / "r.manifest.json"])
    assert list(read_csv(output)["path"]) == sorted(paths)
    assert summary.outputs == [str(output)] and summary.written == 7


def test_the_shard_options_refuse_bad_values_by_name(capsys):
    from logo_batch import cli

    argv = ["classify", "--input", "x", "--model", "m", "--output", "o.csv"]
    for option, value in (("--num_shards", "0"), ("--num-shards", "many"),
                          ("--rows_per_shard", "0"), ("--rows-per-shard", "-5")):  # fmt: skip
        with pytest.raises(SystemExit):
            cli.main([*argv, option, value])
        assert f"argument {option.replace('_', '-')}: " in capsys.readouterr().err  # as in help


@pytest.mark.parametrize("count", [0, 1, 2500])
def test_a_count_is_exact_whatever_the_bundles(count):
    from beam_jobs.counts import CountGlobally

    with _pipeline() as p:
        numbers = p | beam.Create(list(range(count))) | beam.Reshuffle()
        assert_that(numbers | CountGlobally(), equal_to([count]))
