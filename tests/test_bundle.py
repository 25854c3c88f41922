"""Model bundles of our models: safe-mode round trip with identical predictions."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from logo_batch import models
from logo_batch.bundle import BundleMetadata, load_bundle, save_bundle


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
