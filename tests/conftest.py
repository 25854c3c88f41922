"""Shared fixtures: the real archive (skipped where absent) and a synthetic TFDS data_dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# The real archive, when it is there: SHARED_DATA / tfds_flickr27.ARCHIVE_NAME (the name
# is read in the fixture: importing tfds_flickr27 imports TensorFlow).
SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared/data"
# Enough images per class for a tiny model to learn, small enough to build in seconds.
SYNTHETIC_IMAGES_PER_CLASS = 8


@pytest.fixture(scope="session")
def real_archive() -> Path:
    """The real FlickrLogos-27 archive; skips the test when it is not there.

    Tests get the path from this fixture (never ``from conftest import ...``: pytest
    imports conftest files itself, and a second import makes a second module).
    """
    from tfds_flickr27 import ARCHIVE_NAME

    path = SHARED_DATA / ARCHIVE_NAME
    if not path.is_file():
        pytest.skip(f"real FlickrLogos-27 archive not found at {path}")
    return path


@pytest.fixture(scope="session")
def synthetic_archive(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A generated archive in the FlickrLogos-27 layout (manual dir = its parent)."""
    from tfds_flickr27 import ARCHIVE_NAME
    from tfds_flickr27.synthetic import write_synthetic_archive

    directory = tmp_path_factory.mktemp("synthetic_manual")
    return write_synthetic_archive(
        directory / ARCHIVE_NAME,
        images_per_class=SYNTHETIC_IMAGES_PER_CLASS,
        seed=0,
    )


@pytest.fixture(scope="session")
def synthetic_data_dir(synthetic_archive: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TFDS data_dir holding `flickr_logos27/images` and `crops` built from the archive."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import tfds_flickr27

    data_dir = tmp_path_factory.mktemp("tfds_data")
    for config in tfds_flickr27.CONFIG_NAMES:
        tfds_flickr27.build_dataset(config, data_dir, manual_dir=synthetic_archive.parent)
    return data_dir


# The longest test files, started first: run in parallel (`make test`: pytest-xdist,
# one file per worker at a time), the suite ends when its longest file does.
LONGEST_FIRST = ("test_readme.py", "test_demo.py", "test_train.py", "test_hostile_input.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.path.name
        return LONGEST_FIRST.index(name) if name in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: each file's own order is kept
