"""Single transforms of the Beam job, each in a TestPipeline with assert_that."""

from __future__ import annotations

import json

import apache_beam as beam
import numpy as np
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to
from beam_support import count_csv_rows
from image_files import encode, halves, noise_jpeg

from beam_jobs import batching, decoding, hash_shards, inputs, listing, matching, shards, transforms
from beam_jobs.file_facts import FileEntry
from beam_jobs.manifest import MANIFEST_FILE, WriteManifest
from logo_batch.inference.predict import error_prediction, scores_to_prediction


def _pipeline() -> test_pipeline.TestPipeline:
    return test_pipeline.TestPipeline(runner=FnApiRunner())  # in process; never Prism


def test_match_image_files_lists_what_the_local_listing_lists(tmp_path):
    (tmp_path / "sub").mkdir()
    for name in ("a.jpg", "sub/b.PNG", "notes.txt"):
        (tmp_path / name).write_bytes(b"x")
    expected = list(listing.list_local_entries(str(tmp_path)))
    assert [entry.size for entry in expected] == [1, 1]  # each file's size, from its stat
    assert sorted(path for path, *_ in expected) == [
        str(tmp_path / "a.jpg"),
        str(tmp_path / "sub/b.PNG"),
    ]
    with _pipeline() as p:
        entries = (p | matching.MatchImageFiles(str(tmp_path))).entries
        assert_that(entries, equal_to(expected))


@pytest.mark.parametrize("count", [1, 8, 37])
def test_group_into_batches_keeps_every_entry_once_in_batches_of_at_most_b(count):
    entries = [(f"/photos/{i:03d}.jpg", "") for i in range(count)]

    def check(batches):
        assert all(1 <= len(batch) <= 8 for batch in batches)
        flat = [entry for batch in batches for entry in batch]
        assert sorted(flat) == entries  # every entry, once

    with _pipeline() as p:
        batches = p | beam.Create(entries) | batching.GroupIntoBatches(batch_size=8)
        assert_that(batches, check)


def test_decode_image_batches_passes_errors_on_and_decodes_the_rest(tmp_path):
    good = tmp_path / "good.jpg"
    good.write_bytes(encode(halves(40, 30, (255, 0, 0), (0, 0, 255)), "JPEG"))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    batch = ((str(good), ""), (str(tmp_path / "bad.jpg"), ""), ("/gone.jpg", "listing error"))

    def check(decoded):
        (only,) = decoded
        assert [entry for entry, _ in only.inputs] == [FileEntry(str(good))]  # the key
        assert only.inputs[0][1].shape == (16, 16, 3)
        errors = {entry.path: reason for entry, reason in only.errors}
        assert errors["/gone.jpg"] == "listing error" and errors[str(tmp_path / "bad.jpg")]

    with _pipeline() as p:
        decoded = p | beam.Create([batch]) | decoding.DecodeImageBatches(16)
        assert_that(decoded, check)


def test_format_rows_gives_the_prediction_rows_with_the_files_facts():
    entries = [FileEntry("/a.jpg", "", 123, "2024-05-01T12:00:00.000001Z"), FileEntry("/b.jpg")]
    predictions = [
        scores_to_prediction("/a.jpg", np.array([0.7, 0.3]), ["x", "y"], top_k=2),
        error_prediction("/b.jpg", "corrupt"),
    ]
    expected = [
        {**predictions[0].to_row(), "size": "123", "modified": entries[0].modified},
        {**predictions[1].to_row(), "size": "", "modified": ""},
    ]
    with _pipeline() as p:
        keyed = p | beam.Create(list(zip(entries, predictions, strict=True)))
        rows = keyed | transforms.FormatRows("fp1")
        facts = {"fingerprint": "fp1", "sha256": ""}  # no hash taken: a run without --checksum
        assert_that(rows, equal_to([{**row, **facts} for row in expected]))


def test_csv_shards_and_manifest_account_for_every_row(tmp_path):
    rows = [
        scores_to_prediction(f"/p/{i}.jpg", np.array([0.9, 0.1]), ["x", "y"]).to_row()
        for i in range(11)
    ] + [error_prediction("/p/bad.jpg", "corrupt").to_row()]
    manifest_path = str(tmp_path / MANIFEST_FILE)
    with _pipeline() as p:
        matched = p | "Matched" >> beam.Create([len(rows)])
        written = p | beam.Create(rows) | hash_shards.WriteCsvShards(str(tmp_path), num_shards=3)
        _ = written | WriteManifest(matched, manifest_path)
    manifest = json.loads((tmp_path / MANIFEST_FILE).read_text())
    assert manifest["matched"] == 12
    assert sum(shard["rows"] for shard in manifest["shards"].values()) == 12
    assert sum(shard["errors"] for shard in manifest["shards"].values()) == 1
    on_disk = 0
    for name, shard in manifest["shards"].items():
        assert count_csv_rows(tmp_path / name) == (shard["rows"], shard["errors"])
        assert (tmp_path / name).stat().st_size == shard["size"]
        on_disk += shard["rows"]
    assert on_disk == 12


def test_decode_image_batches_in_whole_mode_makes_window_stacks(tmp_path):
    from logo_batch.inference.preprocessing import preprocess_image_file
    from logo_batch.inference.whole_photo import WindowStack, photo_windows

    good = tmp_path / "good.jpg"
    good.write_bytes(encode(halves(40, 30, (255, 0, 0), (0, 0, 255)), "JPEG"))
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    batch = ((str(good), ""), (str(tmp_path / "bad.jpg"), ""))

    def check(decoded):
        (only,) = decoded
        ((entry, stack),) = only.inputs
        assert entry.path == str(good) and isinstance(stack, WindowStack)
        assert stack.inputs.shape == (14, 16, 16, 3)
        np.testing.assert_array_equal(stack.windows, photo_windows(30, 40))
        np.testing.assert_array_equal(stack.inputs[0], preprocess_image_file(good, 16))
        assert {entry.path: reason for entry, reason in only.errors}[str(tmp_path / "bad.jpg")]

    with _pipeline() as p:
        decoded = p | beam.Create([batch]) | decoding.DecodeImageBatches(16, mode="whole")
        assert_that(decoded, check)
    with pytest.raises(ValueError, match="mode must be"):
        decoding.DecodeImageBatches(16, mode="auto")


def test_infer_scores_on_window_stacks_is_classify_photos(tmp_path):
    from beam_support import make_background_bundle

    from beam_jobs.model import infer_scores
    from logo_batch.inference.bundle import load_bundle
    from logo_batch.inference.whole_photo import classify_photos, photo_stack

    bundle = load_bundle(make_background_bundle(tmp_path / "bg"))
    rng = np.random.default_rng(2)
    photos = [rng.integers(0, 256, (h, w, 3), np.uint8) for h, w in [(30, 50), (40, 40), (9, 60)]]
    stacks = [photo_stack(photo, bundle.image_size) for photo in photos]
    results = infer_scores(
        bundle.model, stacks, {}, "m", class_names=bundle.class_names,
        background_class="none", window_batch_size=10,
    )  # fmt: skip
    want = classify_photos(bundle.model, photos, bundle.image_size, bundle.class_names, "none")
    assert len(results) == 3 and {r.model_id for r in results} == {"m"}
    for result, photo in zip(results, want, strict=True):
        np.testing.assert_allclose(result.inference.brand_scores, photo.brand_scores, atol=2e-6)
        np.testing.assert_array_equal(result.inference.boxes, photo.boxes)
    single = infer_scores(bundle.model, [s.inputs[0] for s in stacks], {}, "m")
    assert single[0].inference.shape == (4,)  # single-mode examples as before
    with pytest.raises(ValueError, match="class names"):
        infer_scores(bundle.model, stacks, {})


def test_the_driver_checks_the_writers_counts_and_sizes_without_reading_rows(tmp_path):
    from beam_jobs import job
    from beam_jobs.errors import ClassifyJobError

    rows = [error_prediction(f"/p/{i}.jpg", "corrupt").to_row() for i in range(3)]
    manifest_path = str(tmp_path / MANIFEST_FILE)
    with _pipeline() as p:
        matched = p | "Matched" >> beam.Create([3])
        written = p | beam.Create(rows) | hash_shards.WriteCsvShards(str(tmp_path), num_shards=1)
        _ = written | WriteManifest(matched, manifest_path)
    config = job.JobConfig(input=str(tmp_path), model="unused", output=str(tmp_path / "out.csv"))
    shard = tmp_path / shards.shard_name(0, 1)
    shard.write_bytes(shard.read_bytes()[:-10])  # cut short after the writer reported it
    with pytest.raises(ClassifyJobError, match="bytes on storage, the writer reported"):
        job.verify_and_move(config, str(tmp_path), 1.0, {})
    assert not (tmp_path / "out.csv").exists()


def test_classify_batches_gives_one_prediction_per_file_failures_named(tmp_path):
    from beam_support import CLASSES, IMAGE_SIZE, make_bundle

    from beam_jobs.decoding import DecodedBatch
    from logo_batch.inference.bundle import load_bundle
    from logo_batch.inference.predict import predict_files
    from logo_batch.inference.preprocessing import preprocess_image_file

    bundle = make_bundle(tmp_path / "tiny")
    paths = []
    for i in range(3):
        paths.append(str(tmp_path / f"p{i}.jpg"))
        (tmp_path / f"p{i}.jpg").write_bytes(noise_jpeg(i))
    entries = [FileEntry(path, "", 100 + i, f"2024-05-0{i + 1}T00:00:00.000000Z")
               for i, path in enumerate(paths)]  # fmt: skip
    bad = FileEntry(str(tmp_path / "bad.jpg"), "", 7, "2024-05-09T00:00:00.000000Z")
    gone = FileEntry("/photos/gone.jpg", "broken symbolic link (to x)")
    batches = [
        DecodedBatch(
            inputs=[(entry, preprocess_image_file(entry.path, IMAGE_SIZE)) for entry in entries],
            errors=[(bad, "cannot decode image: truncated")],
        ),
        DecodedBatch(errors=[(gone, gone.error)]),  # no model input at all
        DecodedBatch(),  # nothing: no row
    ]
    want = {p.path: p for p in predict_files(load_bundle(bundle), paths, top_k=2, mode="single")}

    def check(results):
        by_path = {entry.path: (entry, prediction) for entry, prediction in results}
        assert len(results) == len(by_path) == 5  # one per file, each once
        for entry in entries:
            got_entry, got = by_path[entry.path]
            assert got_entry == entry and got.path == entry.path and not got.error  # the key
            assert (got.label, got.top_labels) == (
                want[entry.path].label,
                want[entry.path].top_labels,
            )
            np.testing.assert_allclose(got.top_scores, want[entry.path].top_scores, atol=1e-6)
            assert got.mode == "single" and len(got.top_labels) == 2  # top_k
        assert by_path[bad.path] == (
            bad,
            error_prediction(bad.path, "cannot decode image: truncated", "single"),
        )
        assert by_path[gone.path][1].error == "broken symbolic link (to x)"

    with _pipeline() as p:
        results = (
            p | beam.Create(batches) | transforms.ClassifyBatches(str(bundle), CLASSES, top_k=2)
        )
        assert_that(results, check)


def _row(path: str, entry_size: int, *, fingerprint: str = "fp", error: str = "") -> dict:
    from logo_batch.result_csv import ROW_COLUMNS

    row = {column: "" for column in ROW_COLUMNS}
    if not error:  # a label and scores that need CSV quoting: a carried row keeps them
        row.update(label='a "b", ç', score="0.700000", top_labels='a "b", ç;y')
        row.update(top_scores="0.700000;0.300000", mode="single")
    row.update(path=path, error=error, size=str(entry_size))
    row.update(modified="2024-05-01T12:00:00.000001Z", fingerprint=fingerprint)
    return row


def test_reuse_previous_carries_unchanged_rows_byte_for_byte_and_classifies_the_rest(tmp_path):
    from beam_jobs import previous
    from beam_jobs.sorted_csv import csv_line, to_record
    from logo_batch.result_csv import ROW_COLUMNS

    modified = "2024-05-01T12:00:00.000001Z"
    same = FileEntry('/p/same, "q" é.jpg', "", 10, modified)
    changed = FileEntry("/p/changed.jpg", "", 11, modified)  # the row says 10 bytes
    failed = FileEntry("/p/failed.jpg", "", 10, modified)  # its row is an error: retried
    new = FileEntry("/p/new.jpg", "", 10, modified)
    rows = [
        _row(same.path, 10),
        _row(changed.path, 10),
        _row(failed.path, 10, error="corrupt"),
        _row("/p/removed.jpg", 10),
    ]
    old = tmp_path / "old.csv"
    lines = [csv_line(ROW_COLUMNS)] + [csv_line([row[c] for c in ROW_COLUMNS]) for row in rows]
    old.write_bytes("".join(lines).encode("utf-8"))
    output = previous.PreviousOutput(str(old), (str(old),))
    counts_path = str(tmp_path / previous.REUSE_COUNTS_FILE)

    def carried_bytes(carried):
        assert [to_record(row, ROW_COLUMNS)[2] for row in carried] == [lines[1]]

    with _pipeline() as p:
        entries = p | beam.Create([same, changed, failed, new])
        to_classify, carried = entries | previous.ReusePrevious(output, "fp", counts_path)
        assert_that(to_classify, equal_to([changed, failed, new]), label="ToClassify")
        assert_that(carried, carried_bytes, label="Carried")
    counts = json.loads((tmp_path / previous.REUSE_COUNTS_FILE).read_text())
    assert counts == {"reused": 1, "new": 1, "changed": 1, "retried": 1, "removed": 1}
    # Another fingerprint (another model or settings): nothing is carried.
    with _pipeline() as p:
        entries = p | beam.Create([same])
        to_classify, carried = entries | previous.ReusePrevious(output, "other", counts_path)
        assert_that(to_classify, equal_to([same]), label="ToClassify")
        assert_that(carried, equal_to([]), label="Carried")


def test_read_file_list_names_every_listed_path_resolved(tmp_path):
    from beam_jobs.file_lists import ListedPath

    lists = tmp_path / "lists"
    lists.mkdir()
    text = lists / "files.txt"
    text.write_bytes(b"a.jpg\n\n/abs/b.jpg\r\ngs://bucket/c.jpg\n")
    table = lists / "files.csv"
    table.write_text("name,Path\nx,sub/d.jpg\ny,\n", encoding="utf-8")
    with _pipeline() as p:
        listed = p | "Text" >> matching.ReadFileList(inputs.FileListSpec(str(text), True))
        assert_that(
            listed,
            equal_to([
                ListedPath(str(lists / "a.jpg"), True, str(text)),
                ListedPath("/abs/b.jpg", True, str(text)),
                ListedPath("gs://bucket/c.jpg", False, str(text)),
            ]),
            label="TextList",
        )  # fmt: skip
        rows = p | "Csv" >> matching.ReadFileList(inputs.FileListSpec(str(table), True))
        assert_that(
            rows,
            equal_to([
                ListedPath(str(lists / "sub/d.jpg"), True, str(table)),
                ListedPath(f"{table}:3", True, str(table), "row 3 of the file list has no path"),
            ]),
            label="CsvList",
        )  # fmt: skip


def test_one_entry_per_file_prefers_the_folder_entry_and_looks_listed_paths_up(tmp_path):
    from beam_jobs.file_facts import local_entry
    from beam_jobs.file_lists import ListedPath

    for name in ("a.jpg", "b.jpg"):
        (tmp_path / name).write_bytes(b"x" * 3)
    a, b, gone = (str(tmp_path / name) for name in ("a.jpg", "b.jpg", "gone.jpg"))
    found = [
        local_entry(a),  # found in a folder
        ListedPath(a, True, "l1"),
        ListedPath(a, True, "l2"),
        ListedPath(b, True, "l2"),
        ListedPath(gone, True, "l2"),
        ListedPath(gone, True, "l1"),
    ]
    expected = [
        local_entry(a),
        local_entry(b),  # looked at here: its size and modification time
        FileEntry(gone, "no such file (listed in l1)"),
    ]
    assert expected[1].size == 3
    with _pipeline() as p:
        entries = p | beam.Create(found) | matching.OneEntryPerFile()
        assert_that(entries, equal_to(expected))


def test_match_inputs_gives_one_entry_per_file_of_folders_and_lists(tmp_path):
    from beam_jobs.file_facts import local_entry

    photos = tmp_path / "photos"
    (photos / "sub").mkdir(parents=True)
    for name in ("photos/a.jpg", "photos/sub/b.png", "photos/notes.txt", "extra.jpg"):
        (tmp_path / name).write_bytes(b"x")
    listed = tmp_path / "more.txt"
    listed.write_text("photos/a.jpg\nextra.jpg\ngone.jpg\nextra.jpg\n", encoding="utf-8")
    specs = inputs.resolve_inputs([str(photos)], [str(listed)])
    expected = [
        local_entry(str(photos / "a.jpg")),  # in the folder and the list: once
        local_entry(str(photos / "sub/b.png")),
        local_entry(str(tmp_path / "extra.jpg")),  # listed twice: once
        FileEntry(str(tmp_path / "gone.jpg"), f"no such file (listed in {listed})"),
    ]
    p = _pipeline()
    entries, skipped = p | matching.MatchInputs(specs)
    assert_that(entries, equal_to(expected))
    assert_that(skipped, equal_to([("txt", 1)]), label="Skipped")  # photos/notes.txt
    result = p.run()
    result.wait_until_finish()
    counters = {c.key.metric.name: c.committed for c in result.metrics().query()["counters"]}
    assert counters["files_matched"] == 4 and counters["listing_errors"] == 1
    assert counters["duplicate_entries"] == 2
