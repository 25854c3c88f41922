"""FlickrLogos-27 TFDS dataset `flickr_logos27` (configs `images`, `crops`).

Importing this package registers the builder and turns off TFDS's Google Cloud Storage
look-ups (prepared-data and dataset-info downloads from gs://tfds-data), so building
and loading stay offline.
"""

from __future__ import annotations

import importlib.resources
import importlib.resources.abc
import os
import sys

# TFDS 4.9.x imports the `importlib_resources` backport lazily when it locates a
# builder's code (checksums.tsv, README.md), but declares it only for Python < 3.9.
# The standard library module has the same API on Python >= 3.9.
try:
    import importlib_resources  # noqa: F401
except ModuleNotFoundError:
    sys.modules["importlib_resources"] = importlib.resources

import tensorflow_datasets as tfds  # noqa: E402
from tensorflow_datasets.core.utils import gcs_utils  # noqa: E402

from tfds_flickr27.annotations import CLASS_NAMES, LABEL_NAMES, NONE_LABEL  # noqa: E402
from tfds_flickr27.flickr_logos27_dataset_builder import Builder, Flickr27Config  # noqa: E402
from tfds_flickr27.names import (  # noqa: E402
    ARCHIVE_NAME,
    CONFIG_NAMES,
    CROPS,
    DATASET_NAME,
    IMAGES,
    URL,
)

gcs_utils._is_gcs_disabled = True

__all__ = [
    "ARCHIVE_NAME",
    "CLASS_NAMES",
    "CONFIG_NAMES",
    "CROPS",
    "DATASET_NAME",
    "IMAGES",
    "LABEL_NAMES",
    "NONE_LABEL",
    "URL",
    "Builder",
    "Flickr27Config",
    "build_dataset",
]


def build_dataset(
    config: str,
    data_dir: str | os.PathLike,
    manual_dir: str | os.PathLike | None = None,
    *,
    progress: bool = True,
) -> tfds.core.DatasetBuilder:
    """Builds (if needed) ``flickr_logos27/<config>`` in ``data_dir`` and returns the builder.

    ``manual_dir`` is a directory holding ``flickr_logos_27_dataset.tar.gz``; without it
    the archive is downloaded. Never touches GCS. ``progress=False`` hides TFDS's
    progress bars (for this process).
    """
    tfds.display_progress_bar(progress)
    if config not in CONFIG_NAMES:
        raise ValueError(
            f"flickr_logos27: unknown config {config!r}, expected one of {CONFIG_NAMES}"
        )
    builder = tfds.builder(f"{DATASET_NAME}/{config}", data_dir=os.fspath(data_dir))
    download_config = tfds.download.DownloadConfig(
        manual_dir=None if manual_dir is None else os.fspath(manual_dir),
        try_download_gcs=False,
    )
    builder.download_and_prepare(download_config=download_config)
    return builder
