"""The local listing (beam_jobs.inputs): plan_local_listing's units, list_unit_entries on
them, and list_local_entries (both in one process), each checked against the entries a
tree must give: every image once (symlinked folders followed, loops not), unreadable
folders, broken links and pipes as error rows, non-UTF-8 names escaped, globs only as deep
as they reach, units of at most their bound, files added after planning listed once."""

from __future__ import annotations

import os
from collections import Counter

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing import test_pipeline
from apache_beam.testing.util import assert_that, equal_to

from beam_jobs import batching, matching
from beam_jobs.inputs import resolve_input
from beam_jobs.listing import ERROR, FILE, list_local_entries, list_unit_entries, plan_local_listing

DENIED = "cannot read folder: Permission denied"


@pytest.fixture
def tree(tmp_path):
    """Nested folders, a folder of 23 files, links (a loop, a folder elsewhere, a broken
    one), a named pipe, names that are not UTF-8 or hold a backslash, files that are not
    images, folders without images."""
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
    os.mkfifo(root / "pipe.jpg")
    return root


def _rows(root, *, without=()) -> list[tuple[str, str]]:
    """(escaped path, error) of every entry the whole tree gives, in listing order (folders
    depth first, a folder's files by name before its subfolders); ``without``: folders
    (relative) whose files are not listed. The tmp paths are ASCII without backslashes,
    so they are escaped as they are."""
    r = str(root)
    rows = [
        (f"{r}/gone.jpg", f"broken symbolic link (to {root.parent}/nowhere.jpg)"),
        (f"{r}/pipe.jpg", "not a regular file (a named pipe)"),
        (f"{r}/top.JPG", ""),
        (f"{r}/a/back\\\\slash.jpg", ""),  # a backslash doubled
        (f"{r}/a/caf\\xe9.jpg", ""),  # the byte that is not UTF-8 as \xNN
        (f"{r}/a/x.png", ""),
        (f"{r}/a/b/y.webp", ""),  # and not again below a/b/up (a link to the root)
        *[(f"{r}/big/f{i:02d}.jpg", "") for i in range(23)],  # not notes.txt
        (f"{r}/linked/far.jpg", ""),  # through the link to a folder elsewhere
    ]
    prefixes = tuple(f"{r}/{folder}/" for folder in without)
    return [row for row in rows if not row[0].startswith(prefixes)]


def _pairs(entries) -> list[tuple[str, str]]:
    return [(entry.path, entry.error) for entry in entries]


def _units_entries(root, pattern=None, **sizes):
    units = list(plan_local_listing(str(root), pattern, **sizes))
    return units, [entry for unit in units for entry in list_unit_entries(unit, pattern)]


def test_list_local_entries_lists_each_image_once_with_its_facts(tree):
    entries = list(list_local_entries(str(tree)))
    assert _pairs(entries) == _rows(tree)  # in this order
    assert len(_rows(tree)) == 31
    for entry in entries:
        if entry.error:
            assert (entry.size, entry.modified) == (None, "")
        else:
            assert entry.size == 1 and entry.modified.endswith("Z")


# files_per_unit: units the tree (31 files: in/ 3, a/ 3, a/b/ 1, big/ 23, linked/ 1) is
# planned in at parts_per_unit=3: full units of files, unless 3 folders fill one first.
UNITS = {1: 31, 2: 16, 5: 7, 10: 4, 10_000: 2}


@pytest.mark.parametrize("files_per_unit", sorted(UNITS))
def test_units_list_each_image_once_whatever_their_size(tree, files_per_unit):
    units, got = _units_entries(tree, files_per_unit=files_per_unit, parts_per_unit=3)
    assert sorted(_pairs(got)) == sorted(_rows(tree))  # each entry once, nothing else
    assert len(units) == UNITS[files_per_unit]
    for unit in units:
        assert 1 <= len(unit.parts) <= 3
        assert len(list(list_unit_entries(unit))) == unit.files <= files_per_unit
    if files_per_unit == 1:  # a name that is not UTF-8 bounds a range: escaped, as paths are
        a_parts = [part for unit in units for part in unit.parts if part.path == f"{tree}/a"]
        assert [(part.lo, part.hi) for part in a_parts] == [
            (None, "caf\\xe9.jpg"),
            ("caf\\xe9.jpg", "x.png"),
            ("x.png", None),
        ]
    if files_per_unit == 5:  # big's 23 files: 3 in a unit with a/ and a/b/, then fives
        big = [part for unit in units for part in unit.parts if part.path == f"{tree}/big"]
        assert [(part.lo, part.hi) for part in big] == [
            (None, "f03.jpg"),
            ("f03.jpg", "f08.jpg"),
            ("f08.jpg", "f13.jpg"),
            ("f13.jpg", "f18.jpg"),
            ("f18.jpg", None),
        ]


def _scanning(monkeypatch, refused=()):
    """Records the folders os.scandir reads; refuses those in ``refused`` (as a folder
    without read permission would: root's permissions are not enforced)."""
    real_scandir, scanned = os.scandir, []

    def scandir(path="."):
        scanned.append(os.fspath(path))
        if os.fspath(path) in refused:
            raise PermissionError(13, "Permission denied", os.fspath(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", scandir)
    return scanned


def test_a_glob_keeps_matching_paths_as_deep_as_it_reaches(tree, monkeypatch):
    r = str(tree)
    one_down = [  # Beam's * matches neither / nor \: not a/back\slash.jpg
        (f"{r}/a/caf\\xe9.jpg", ""),
        *[(f"{r}/big/f{i:02d}.jpg", "") for i in range(23)],
        (f"{r}/linked/far.jpg", ""),
    ]
    any_depth = [
        (f"{r}/gone.jpg", f"broken symbolic link (to {tree.parent}/nowhere.jpg)"),
        (f"{r}/pipe.jpg", "not a regular file (a named pipe)"),
        (f"{r}/a/back\\\\slash.jpg", ""),
        *one_down,
    ]
    cases = {  # not top.JPG (*.jpg is case-sensitive), x.png, y.webp, notes.txt
        f"{r}/*/*.jpg": one_down,
        f"{r}/**.jpg": any_depth,
        f"{r}/big/f1*.jpg": [(f"{r}/big/f1{i}.jpg", "") for i in range(10)],
    }
    for pattern, want in cases.items():
        spec = resolve_input(pattern)
        assert sorted(_pairs(list_local_entries(spec.root, spec.pattern))) == sorted(want)
        _, got = _units_entries(spec.root, spec.pattern, files_per_unit=4)
        assert sorted(_pairs(got)) == sorted(want)
    # A folder deeper than the glob reaches is never read: no error row for it.
    scanned = _scanning(monkeypatch, refused={f"{r}/a/b"})
    spec = resolve_input(f"{r}/*/*.jpg")
    assert sorted(_pairs(list_local_entries(spec.root, spec.pattern))) == sorted(one_down)
    assert not [path for path in scanned if path.startswith(f"{r}/a/b")]
    spec = resolve_input(f"{r}/**.jpg")
    got = sorted(_pairs(list_local_entries(spec.root, spec.pattern)))
    assert got == sorted([*any_depth, (f"{r}/a/b", DENIED)])


def test_a_file_is_its_own_unit(tree):
    single = tree / "top.JPG"
    units = list(plan_local_listing(str(single)))
    assert [(unit.files, [part.kind for part in unit.parts]) for unit in units] == [(1, [FILE])]
    assert _pairs(list_unit_entries(units[0])) == [(str(single), "")]
    assert _pairs(list_local_entries(str(single))) == [(str(single), "")]
    assert _pairs(list_local_entries(str(tree / "gone.jpg"))) == [_rows(tree)[0]]
    assert list(plan_local_listing(str(tree / "big" / "notes.txt"))) == []  # not an image
    assert list(plan_local_listing(str(tree / "missing.jpg"))) == []


def test_a_folder_that_cannot_be_read_is_one_error_row(tree, monkeypatch):
    refused = {str(tree / "a")}
    _scanning(monkeypatch, refused)
    want = sorted([*_rows(tree, without=["a"]), (f"{tree}/a", DENIED)])  # nor a/b below it
    assert sorted(_pairs(list_local_entries(str(tree)))) == want
    units, got = _units_entries(tree, files_per_unit=5)
    errors = [part for unit in units for part in unit.parts if part.kind == ERROR]
    assert [(part.path, part.error) for part in errors] == [(f"{tree}/a", DENIED)]
    assert sorted(_pairs(got)) == want
    # Readable when planned, not when listed: one row for the folder, from its first range.
    refused.clear()
    units = list(plan_local_listing(str(tree), files_per_unit=5))
    refused.add(str(tree / "big"))
    got = [entry for unit in units for entry in list_unit_entries(unit)]
    assert sorted(_pairs(got)) == sorted([*_rows(tree, without=["big"]), (f"{tree}/big", DENIED)])
    big_rows = [entry for entry in got if entry.path.startswith(str(tree / "big"))]
    assert big_rows == [(str(tree / "big"), DENIED, None, "", "")]


def test_files_added_after_planning_are_listed_once(tree):
    units = list(plan_local_listing(str(tree), files_per_unit=4))
    big_ranges = [part for unit in units for part in unit.parts if part.path == f"{tree}/big"]
    assert len(big_ranges) == 7  # 1 + 4 + 4 + 4 + 4 + 4 + 2 files
    added = ("a.jpg", "f05x.jpg", "f11x.jpg", "zz.jpg")  # before, inside, after the ranges
    for name in added:
        (tree / "big" / name).write_bytes(b"x")
    got = [entry.path for unit in units for entry in list_unit_entries(unit)]
    assert Counter(got).most_common(1)[0][1] == 1
    want = [path for path, _ in _rows(tree)] + [f"{tree}/big/{name}" for name in added]
    assert sorted(got) == sorted(want)


def test_match_image_files_in_units_gives_the_entries_once(tree):
    want = _rows(tree)
    with test_pipeline.TestPipeline(runner=FnApiRunner()) as p:
        entries = (p | matching.MatchImageFiles(str(tree), files_per_unit=1)).entries  # coders
        pairs = entries | beam.Map(lambda entry: (entry.path, entry.error))
        assert_that(pairs, equal_to(want))
        batches = entries | batching.GroupIntoBatches(batch_size=4)
        flat = batches | beam.FlatMap(lambda batch: [fields[0] for fields in batch])
        assert_that(flat, equal_to([path for path, _ in want]), label="Batched")


def test_unit_sizes_must_be_positive(tree):
    with pytest.raises(ValueError, match="at least 1"):
        list(plan_local_listing(str(tree), files_per_unit=0))
    with pytest.raises(ValueError, match="at least 1"):
        list(plan_local_listing(str(tree), parts_per_unit=0))
