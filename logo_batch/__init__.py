"""logo-batch: train FlickrLogos-27 logo classifiers and classify image folders in bulk."""

__version__ = "0.1.0"
