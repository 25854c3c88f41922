"""logo-batch: train FlickrLogos-27 logo classifiers and classify image folders in bulk."""

from setuptools import find_packages, setup

setup(
    name="logo-batch",
    version="0.1.0",
    description=(
        "Train logo classifiers on FlickrLogos-27 (TFDS + tf.data + Keras) and "
        "classify very large image folders with Apache Beam."
    ),
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10",
    packages=find_packages(include=["logo_batch*", "tfds_flickr27*", "beam_jobs*"]),
    package_data={
        "tfds_flickr27": [
            "README.md",
            "CITATIONS.bib",
            "TAGS.txt",
            "checksums.tsv",
            "dummy_data/*",
        ],
    },
    install_requires=[
        "tensorflow>=2.16",
        "tensorflow-datasets>=4.9.4",
        # The `tfds` command line needs mlcroissant; TFDS 4.9 imports importlib_resources
        # but declares it only for Python < 3.9.
        "mlcroissant>=1.0",
        "importlib_resources>=5",
        "apache-beam>=2.60",
        # Beam's TensorFlow model handler imports tensorflow_hub at import time.
        "tensorflow-hub>=0.16",
        "pillow>=10",
        "numpy>=1.26",
        "pandas>=2",
        # Training curves and the confusion matrix are written as PNG.
        "matplotlib>=3.8",
        # TensorBoard logs of every training run.
        "tensorboard>=2.16",
    ],
    extras_require={
        "test": [
            "pytest>=8",
            "ruff>=0.6",
            "dask[distributed]>=2024.1",
            "psutil>=5",
            # tfds.testing (DatasetBuilderTestCase) needs dill.
            "dill",
        ],
        "dask": ["dask[distributed]>=2024.1"],
        "gpu": ["tensorflow[and-cuda]>=2.16"],
    },
    entry_points={"console_scripts": ["logo-batch=logo_batch.cli:main"]},
)
