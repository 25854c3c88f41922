"""Entry point of the path form ``tfds build tfds_flickr27`` (run from the repo root).

``tfds build DIR`` loads ``DIR/<DIR>_dataset_builder.py`` and wants exactly one builder
defined there, so this module subclasses the real builder under the same dataset name,
without registering it a second time.
"""

from tfds_flickr27.flickr_logos27_dataset_builder import Builder as _Builder
from tfds_flickr27.names import DATASET_NAME


class Builder(_Builder, skip_registration=True):
    """The ``flickr_logos27`` builder (see ``flickr_logos27_dataset_builder.py``)."""

    name = DATASET_NAME
