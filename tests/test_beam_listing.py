"""A local folder listed in units (beam_jobs.reading.plan_local_listing, list_unit_entries):
the same entries as the one-process listing, whatever the unit size, with no unit over
its bound, and files added after planning listed once."""

from __future__ import annotations

import os
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import inputs, reading
from beam_jobs.reading import ERROR, FILE, list_unit_entries, plan_local_listing


@pytest.fixture
def tree(tmp_path):
    """Nested folders, a folder of 23 files, links (a loop, a folder elsewhere, a broken
    one), names that are not UTF-8 or hold a backslash, files that are not images."""
    root, elsewhere = tmp_path / "in", tmp_path / "elsewhere"
    (root / "a" / "b").mkdir(parents=True)
    (root / "big").mkdir()
    (root / "empty" / "deeper").mkdir(parents=True)
    elsewhere.mkdir()
    for i in range(23):
        (root / "big" / f"f{i:02d}.jpg").write_bytes(b"x")
    (root / "big" / "notes.txt").write_bytes(b"x")
    (root / "top.JPG").write_bytes(b"x")
    (root / "a" / "x.png").write_bytes(b"x")
    (root / "a" / "b" / "y.webp").write_bytes(b"x")
    (root / "a" / "back\\slash.jpg").write_bytes(b"x")
    with open(os.fsencode(root / "a") + b"/caf\xe9.jpg", "wb") as handle:
        handle.write(b"x")
    (elsewhere / "far.jpg").write_bytes(b"x")
    (root / "linked").symlink_to(elsewhere, target_is_directory=True)
    (root / "a" / "b" / "up").symlink_to(root, target_is_directory=True)  # a loop
    (root / "gone.jpg").symlink_to(tmp_path / "nowhere.jpg")
    return root


def _units_entries(root, pattern=None, **sizes):
    units = list(plan_local_listing(str(root), pattern, **sizes))
    return units, [entry for unit in units for entry in list_unit_entries(unit, pattern)]


@pytest.mark.parametrize("files_per_unit", [1, 2, 5, 10, 10_000])
def test_units_list_what_the_one_process_listing_lists(tree, files_per_unit):
    want = list(inputs.list_local_entries(str(tree)))
    assert len(want) == 23 + 7  # big, top, x, y, back\slash, café, linked/far, gone
    units, got = _units_entries(tree, files_per_unit=files_per_unit, parts_per_unit=3)
    assert sorted(got) == sorted(want)  # each file once, with the same facts and errors
    for unit in units:
        assert 1 <= len(unit.parts) <= 3
        assert len(list(list_unit_entries(unit))) == unit.files <= files_per_unit
    if files_per_unit == 1:  # a name that is not UTF-8 bounds a range: escaped, as paths are
        bounds = {part.lo for unit in units for part in unit.parts}
        assert "caf\\xe9.jpg" in bounds
    if files_per_unit == 5:  # the 23 files of big in ranges of names: 5 units' worth
        big = [part for unit in units for part in unit.parts if part.path.endswith("/big")]
        assert len(big) >= 5 and big[0].lo is None and big[-1].hi is None
        assert [part.lo for part in big[1:]] == [part.hi for part in big[:-1]]


def test_a_glob_reaches_as_deep_as_its_pattern_and_a_file_is_its_own_unit(tree):
    for pattern in (f"{tree}/*/*.jpg", f"{tree}/**.jpg", f"{tree}/big/f1*.jpg"):
        spec = inputs.resolve_input(pattern)
        want = list(inputs.list_local_entries(spec.root, spec.pattern))
        assert want
        _, got = _units_entries(spec.root, spec.pattern, files_per_unit=4)
        assert sorted(got) == sorted(want)
    single = tree / "top.JPG"
    units = list(plan_local_listing(str(single)))
    assert [part.kind for unit in units for part in unit.parts] == [FILE]
    assert [entry.path for entry in list_unit_entries(units[0])] == [str(single)]
    assert list(plan_local_listing(str(tree / "big" / "notes.txt"))) == []


def test_a_folder_that_cannot_be_read_is_one_error_row(tree, monkeypatch):
    real_scandir, refused = os.scandir, {str(tree / "a")}

    def scandir(path="."):
        if os.fspath(path) in refused:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    units, got = _units_entries(tree, files_per_unit=5)
    errors = [part for unit in units for part in unit.parts if part.kind == ERROR]
    assert [part.path for part in errors] == [str(tree / "a")]
    assert sorted(got) == sorted(inputs.list_local_entries(str(tree)))
    # Readable when planned, not when listed: one row for the folder, from its first range.
    refused = {str(tree / "big")}
    got = [entry for unit in units for entry in list_unit_entries(unit)]
    big_rows = [entry for entry in got if entry.path.startswith(str(tree / "big"))]
    assert big_rows == [(str(tree / "big"), "cannot read folder: Permission denied", None, "")]


def test_files_added_after_planning_are_listed_once(tree):
    units = list(plan_local_listing(str(tree), files_per_unit=4))
    for name in ("a.jpg", "f05x.jpg", "f11x.jpg", "zz.jpg"):  # before, inside, after the ranges
        (tree / "big" / name).write_bytes(b"x")
    got = [entry.path for unit in units for entry in list_unit_entries(unit)]
    assert Counter(got).most_common(1)[0][1] == 1
    assert sorted(got) == sorted(entry.path for entry in inputs.list_local_entries(str(tree)))


def test_match_image_files_in_units_gives_the_entries_once(tree):
    want = list(inputs.list_local_entries(str(tree)))
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as p:
        entries = p | reading.MatchImageFiles(str(tree), files_per_unit=1)  # through coders
        assert_that(entries, equal_to(want))
        batches = entries | reading.GroupIntoBatches(batch_size=4)
        flat = batches | beam.FlatMap(lambda batch: [fields[0] for fields in batch])
        assert_that(flat, equal_to([entry.path for entry in want]), label="Batched")


def test_unit_sizes_must_be_positive(tree):
    with pytest.raises(ValueError, match="at least 1"):
        list(plan_local_listing(str(tree), files_per_unit=0))
