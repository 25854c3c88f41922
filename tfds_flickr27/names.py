"""The dataset's names, each defined once (pure Python: no TensorFlow import).

Everything above the dataset package (the library, the trainer, the Beam job, the apps,
tests and benchmarks) imports these from ``tfds_flickr27`` instead of spelling them.
"""

DATASET_NAME = "flickr_logos27"
IMAGES = "images"  # config: whole images
CROPS = "crops"  # config: one logo crop per box
CONFIG_NAMES = (IMAGES, CROPS)
ARCHIVE_NAME = "flickr_logos_27_dataset.tar.gz"  # the official archive's file name
URL = f"http://image.ntua.gr/iva/datasets/flickr_logos/{ARCHIVE_NAME}"
