"""Regenerates ``dummy_data/`` for the builder test: ``python -m tfds_flickr27.make_dummy_data``.

The archive comes from :func:`tfds_flickr27.synthetic.write_synthetic_archive` (seeded,
so the bytes only change when the generator does). Update ``SPLITS`` in
``flickr_logos27_dataset_builder_test.py`` if the sizes below change.
"""

from __future__ import annotations

from pathlib import Path

from tfds_flickr27.names import ARCHIVE_NAME
from tfds_flickr27.synthetic import write_synthetic_archive

DUMMY_DIR = Path(__file__).resolve().parent / "dummy_data"
DUMMY_ARGS = {"images_per_class": 4, "query_per_class": 1, "image_size": 48, "seed": 0}


def main() -> Path:
    """Writes ``dummy_data/flickr_logos_27_dataset.tar.gz`` and returns its path."""
    path = write_synthetic_archive(DUMMY_DIR / ARCHIVE_NAME, **DUMMY_ARGS)
    print(f"wrote {path} ({path.stat().st_size:,} bytes)")
    return path


if __name__ == "__main__":
    main()
