"""Model bundles of our models: safe-mode round trip with identical predictions; local
and remote bundles read through one function (``open_bundle_file``)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from logo_batch.inference.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    BundleMetadata,
    bundle_file,
    load_bundle,
    model_path,
    open_bundle_file,
    read_metadata,
    save_bundle,
)
from logo_batch.training import models


@pytest.mark.parametrize("head", models.HEADS)
def test_bundle_round_trip_identical_predictions(tmp_path, head):
    model = models.build_model("tiny_cnn", 4, 32, "none", head)
    model.get_layer("predictions").set_weights(
        [
            np.random.default_rng(1).normal(size=w.shape)
            for w in model.get_layer("predictions").weights
        ]
    )
    metadata = BundleMetadata(["a", "b", "c", "d"], 32, "tiny_cnn", "none", head)
    save_bundle(model, metadata, tmp_path / "bundle", export_serving=False)
    loaded = load_bundle(tmp_path / "bundle")  # safe mode: no Lambda layers allowed
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype(np.float32)
    expected = model.predict_on_batch(images)
    assert np.array_equal(loaded.model.predict_on_batch(images), expected)
    assert loaded.metadata.head == head and loaded.class_names == ["a", "b", "c", "d"]
    assert not any(isinstance(layer, keras.layers.Lambda) for layer in loaded.model.layers)
    assert loaded.model.get_layer("scale_pixels").mode == "tf"


def test_bundle_file_joins_paths_and_uris(tmp_path):
    assert bundle_file(tmp_path / "b", MODEL_FILE) == str(tmp_path / "b" / MODEL_FILE)
    assert bundle_file("gs://bucket/b/", METADATA_FILE) == "gs://bucket/b/metadata.json"
    assert bundle_file("ram://b", MODEL_FILE) == "ram://b/model.keras"
    assert model_path("s3://bucket/b") == "s3://bucket/b/model.keras"


def test_a_bundle_on_another_file_system_reads_through_the_one_function(tmp_path):
    """A bundle under TensorFlow's ``ram://`` file system (as gs:// or s3:// would be):
    its metadata, model, fingerprint and model check all go through open_bundle_file."""
    import tensorflow as tf
    from beam_support import make_bundle

    from beam_jobs.errors import ClassifyJobError
    from beam_jobs.fingerprint import job_fingerprint
    from beam_jobs.model import bundle_model_uri
    from logo_batch.inference.checks import BundleError, check_keras_archive

    local = make_bundle(tmp_path / "tiny")
    remote = f"ram://{tmp_path.name}/tiny"  # the ram:// file system is per process
    for name in (MODEL_FILE, METADATA_FILE):
        tf.io.gfile.copy(str(local / name), bundle_file(remote, name))
    with open_bundle_file(remote, METADATA_FILE) as handle:
        assert handle.read() == (local / METADATA_FILE).read_bytes()

    assert read_metadata(remote) == read_metadata(local)
    loaded, reference = load_bundle(remote), load_bundle(local)
    assert loaded.path == remote and loaded.class_names == reference.class_names
    images = np.random.default_rng(0).uniform(0, 255, (2, 24, 24, 3)).astype(np.float32)
    np.testing.assert_array_equal(
        loaded.model.predict_on_batch(images), reference.model.predict_on_batch(images)
    )
    settings = dict(
        mode="single", grid=((1, 1.0),), top_k=5, min_score=None, max_pixels=99, precision="off"
    )
    assert job_fingerprint(remote, **settings) == job_fingerprint(str(local), **settings)
    assert bundle_model_uri(remote) == f"{remote}/{MODEL_FILE}"  # what the workers load
    check_keras_archive(remote)

    missing = f"ram://{tmp_path.name}/nothing"
    with pytest.raises(FileNotFoundError, match=f"{missing}: not a logo-batch model bundle"):
        read_metadata(missing)
    with pytest.raises(FileNotFoundError, match="nothing/model.keras"):
        with open_bundle_file(missing, MODEL_FILE) as handle:
            handle.read()
    with pytest.raises(ClassifyJobError, match="cannot read it to fingerprint the model"):
        job_fingerprint(missing, **settings)
    broken = f"ram://{tmp_path.name}/broken"  # a new file: ram:// appends to an old one
    data = (local / MODEL_FILE).read_bytes()
    with tf.io.gfile.GFile(bundle_file(broken, MODEL_FILE), "wb") as handle:
        handle.write(data[: len(data) // 2])  # truncated: fails the zip checks
    with pytest.raises(BundleError, match=f"{broken}/model.keras: the model file is "):
        check_keras_archive(broken)
