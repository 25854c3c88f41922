"""TFDS's standard builder test on ``dummy_data/`` (see ``make_dummy_data.py``)."""

import tensorflow_datasets as tfds

import tfds_flickr27  # noqa: F401 - registers the builder, disables GCS
from tfds_flickr27 import flickr_logos27_dataset_builder


class ImagesTest(tfds.testing.DatasetBuilderTestCase):
    """`images`: 4 images per class, 1 query per class + 27 `none`, Fedex/Porsche left out."""

    DATASET_CLASS = flickr_logos27_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["images"]
    SPLITS = {"train": 80, "validation": 27, "test": 56}
    SKIP_CHECKSUMS = True  # read from the manual dir; no URL is downloaded


class CropsTest(tfds.testing.DatasetBuilderTestCase):
    """`crops`: one example per distinct non-zero box of the dummy training set."""

    DATASET_CLASS = flickr_logos27_dataset_builder.Builder
    BUILDER_CONFIG_NAMES_TO_TEST = ["crops"]
    SPLITS = {"train": 69, "validation": 39, "test": 36}
    SKIP_CHECKSUMS = True


if __name__ == "__main__":
    tfds.testing.test_main()
