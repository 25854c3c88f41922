"""Where the archive comes from (tfds_flickr27.download) and extracting its images."""

from __future__ import annotations

from pathlib import Path

import pytest

from tfds_flickr27 import ARCHIVE_NAME, URL
from tfds_flickr27.archive import extract_images, scan
from tfds_flickr27.download import archive_path, download_file, link_manual_dir


def _no_download(url: str):
    raise AssertionError(f"downloaded {url} although a local file is there")


def test_a_local_file_is_used_as_it_is(tmp_path: Path):
    (tmp_path / ARCHIVE_NAME).write_bytes(b"local")
    assert archive_path(tmp_path, _no_download) == tmp_path / ARCHIVE_NAME
    assert archive_path(str(tmp_path), _no_download) == tmp_path / ARCHIVE_NAME
    assert archive_path(tmp_path) == tmp_path / ARCHIVE_NAME  # default download not called


def test_without_a_local_file_the_official_url_is_downloaded(tmp_path: Path):
    asked = []
    assert archive_path(tmp_path, lambda url: asked.append(url) or "got") == "got"
    assert archive_path(None, lambda url: asked.append(url) or "got") == "got"
    assert asked == [URL, URL]


def test_download_errors_propagate_and_leave_no_file(tmp_path: Path):
    with pytest.raises(OSError):
        download_file((tmp_path / "absent.tar.gz").as_uri(), tmp_path / "out" / ARCHIVE_NAME)
    assert not (tmp_path / "out" / ARCHIVE_NAME).exists()
    with pytest.raises(ValueError, match="manual_dir"):
        archive_path(None)


def test_download_file_is_atomic(tmp_path: Path):
    source = tmp_path / "source.bin"
    source.write_bytes(b"x" * 3_000_000)
    target = download_file(source.as_uri(), tmp_path / "dl" / ARCHIVE_NAME)
    assert target.read_bytes() == source.read_bytes()
    assert sorted(p.name for p in target.parent.iterdir()) == [ARCHIVE_NAME]


def test_link_manual_dir_replaces_an_earlier_link(tmp_path: Path):
    first, second = tmp_path / "a.tar.gz", tmp_path / "b.tar.gz"
    first.write_bytes(b"a")
    second.write_bytes(b"b")
    manual = link_manual_dir(first, tmp_path / "manual")
    assert (manual / ARCHIVE_NAME).read_bytes() == b"a"
    assert link_manual_dir(second, manual) == manual
    assert (manual / ARCHIVE_NAME).read_bytes() == b"b"


def test_extract_images_writes_the_wanted_ones(synthetic_archive: Path, tmp_path: Path):
    query = scan(synthetic_archive).query
    written = extract_images(synthetic_archive, query, tmp_path / "out")
    assert sorted(Path(p).name for p in written) == sorted(query)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == sorted(query)
    assert all(Path(p).read_bytes()[:2] == b"\xff\xd8" for p in written)  # JPEGs
