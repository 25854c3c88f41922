"""Models: heads, pixel scaling, weights loading and its errors, fine-tuning rules."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np
import pytest

from logo_batch.training import models

SHARED_WEIGHTS = (
    Path(__file__).resolve().parents[2]
    / "shared/weights/mobilenet_v2_1.0_imagenet_derived_no_top.weights.h5"
)


@pytest.fixture
def tiny_weights(tmp_path) -> tuple[Path, list[np.ndarray]]:
    """A base weights file (no top) for tiny_cnn, with non-default values."""
    base = models.build_backbone("tiny_cnn", 32, "none")
    values = [np.full(w.shape, 0.01 * (i + 1), np.float32) for i, w in enumerate(base.weights)]
    base.set_weights(values)
    path = tmp_path / "tiny.weights.h5"
    base.save_weights(path)
    return path, values


@pytest.mark.parametrize("head", models.HEADS)
def test_heads_give_float32_softmax(head):
    model = models.build_model("tiny_cnn", 27, 32, "none", head)
    scores = model(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)), training=False)
    assert scores.shape == (2, 27) and scores.dtype == "float32"
    assert np.allclose(np.sum(scores, axis=1), 1.0, atol=1e-5)


def test_seed_head_is_the_articles():
    names = [
        type(layer).__name__
        for layer in models.build_model("tiny_cnn", 27, 32, "none", "seed").layers
    ]
    assert names[-5:] == ["AveragePooling2D", "Flatten", "Dense", "Dropout", "Dense"]


def test_avgmax_head_pools_each_channel_by_mean_and_max(tiny_weights):
    model = models.build_model("tiny_cnn", 27, 32, str(tiny_weights[0]), "avgmax")
    images = np.random.default_rng(1).uniform(0, 255, (2, 32, 32, 3)).astype(np.float32)
    pooled = keras.Model(model.input, model.get_layer("head_pool").output)(images)
    scaled = model.get_layer("scale_pixels")(images)
    features = np.asarray(models.backbone_of(model)(scaled, training=False))
    expected = np.concatenate([features.mean(axis=(1, 2)), features.max(axis=(1, 2))], axis=1)
    assert features.shape[1:3] == (4, 4)  # a map, not one cell: mean and max differ
    assert np.allclose(pooled, expected, rtol=1e-5, atol=1e-5)


def test_softmax_stays_float32_under_mixed_precision():
    keras.mixed_precision.set_global_policy("mixed_float16")
    try:
        model = models.build_model("tiny_cnn", 5, 32, "none")
    finally:
        keras.mixed_precision.set_global_policy("float32")
    assert model.get_layer("scale_pixels").compute_dtype == "float16"
    assert model(np.zeros((1, 32, 32, 3))).dtype == "float32"


def test_weights_file_is_loaded_and_base_frozen(tiny_weights):
    path, values = tiny_weights
    model = models.build_model("tiny_cnn", 27, 32, str(path))
    base = models.backbone_of(model)
    for loaded, expected in zip(base.get_weights(), values, strict=True):
        assert np.array_equal(loaded, expected)
    assert not base.trainable
    assert {w.path.split("/")[0] for w in model.trainable_weights} == {"predictions"}


def test_fine_tune_keeps_batchnorm_frozen_and_in_inference_mode(tiny_weights):
    model = models.build_model("tiny_cnn", 3, 32, str(tiny_weights[0]))
    unfrozen = models.set_fine_tune(model, 0.5)
    base = models.backbone_of(model)
    bn = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    assert unfrozen > 0 and not any(layer.trainable for layer in bn)
    assert base.layers[-2].trainable and not base.layers[1].trainable
    before = [layer.moving_mean.numpy().copy() for layer in bn]
    model.compile("adam", "sparse_categorical_crossentropy")
    rng = np.random.default_rng(0)
    model.fit(rng.uniform(0, 255, (8, 32, 32, 3)), rng.integers(0, 3, 8), epochs=1, verbose=0)
    for layer, mean in zip(bn, before, strict=True):
        assert np.array_equal(layer.moving_mean.numpy(), mean), "BatchNorm statistics moved"


def test_missing_weights_file_names_it(tmp_path):
    path = tmp_path / "absent.weights.h5"
    with pytest.raises(models.WeightsError, match="absent.weights.h5: weights file not found"):
        models.build_model("tiny_cnn", 27, 32, str(path))


def test_incompatible_weights_file_names_it(tiny_weights):
    with pytest.raises(
        models.WeightsError, match="tiny.weights.h5: cannot load into a mobilenet_v2"
    ):
        models.build_backbone("mobilenet_v2", 32, str(tiny_weights[0]))


def test_imagenet_download_failure_is_explained():
    """No internet here: the real download fails and the error says what to do."""
    try:
        models.build_backbone("mobilenet_v3_small", 32, "imagenet")
    except models.WeightsError as error:
        message = str(error)
        assert "mobilenet_v3_small" in message
        assert "--weights PATH" in message and "--weights none" in message
    else:
        pytest.skip("ImageNet weights were reachable (internet or Keras cache)")


def test_tiny_cnn_has_no_imagenet_weights():
    with pytest.raises(models.WeightsError, match="no ImageNet weights"):
        models.build_backbone("tiny_cnn", 32, "imagenet")


def test_unknown_backbone_lists_the_choices():
    with pytest.raises(ValueError, match="mobilenet_v2"):
        models.build_model("vgg99")


@pytest.mark.skipif(not SHARED_WEIGHTS.is_file(), reason=f"{SHARED_WEIGHTS} absent")
def test_shared_mobilenet_v2_weights_load():
    model = models.build_model("mobilenet_v2", 27, 96, str(SHARED_WEIGHTS))
    reference = keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), include_top=False, weights=None
    )
    reference.load_weights(SHARED_WEIGHTS)
    base = models.backbone_of(model)
    for loaded, expected in zip(base.get_weights(), reference.get_weights(), strict=True):
        assert np.array_equal(loaded, expected)
    assert model.get_layer("scale_pixels").mode == "tf"
