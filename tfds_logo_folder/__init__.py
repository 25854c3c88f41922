"""Datasets built from a user's own logo folder, in FlickrLogos-27's configs and features.

``build_folder_dataset(FOLDER, NAME, DATA_DIR)`` (``logo-batch dataset build``) writes
``NAME/images`` and ``NAME/crops`` there; afterwards ``tfds.load("NAME/crops",
data_dir=DATA_DIR)`` reads them without this package. The folder's layout:
:mod:`tfds_logo_folder.layout`; what is skipped and how the splits are made:
:mod:`tfds_logo_folder.plan`.
"""

from __future__ import annotations

from tfds_logo_folder.build import (
    DEFAULT_FRACTIONS,
    BuildResult,
    build_folder_dataset,
    check_fractions,
    check_name,
)
from tfds_logo_folder.layout import FolderError

__all__ = [
    "DEFAULT_FRACTIONS",
    "BuildResult",
    "FolderError",
    "build_folder_dataset",
    "check_fractions",
    "check_name",
]
