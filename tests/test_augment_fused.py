"""The fused augmentation (one warp, one colour matrix per image): each part does what
its Keras layer does, within the same strengths, and nothing else."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from logo_batch.training.augment import LUMA, AugmentConfig, FusedAugment, build_augmenter
from logo_batch.training.config import TrainConfig

SIZE = 32
OFF = {f: 0.0 for f in ("zoom", "shift", "rotation", "brightness", "contrast", "saturation", "hue")}


def only(**strengths) -> AugmentConfig:
    return AugmentConfig(method="fused", **{**OFF, **strengths})


def mid_range_batch(n: int = 16, seed: int = 0) -> np.ndarray:
    """Colourful images in [60, 190]: no clipping under the colour parts' strengths."""
    return np.random.default_rng(seed).uniform(60, 190, (n, SIZE, SIZE, 3)).astype("float32")


def run(config: AugmentConfig, images: np.ndarray, seed: int = 0) -> np.ndarray:
    return FusedAugment(config, seed=seed)(tf.constant(images), training=True).numpy()


def test_every_part_off_is_the_identity():
    x = mid_range_batch()
    np.testing.assert_allclose(run(only(), x), x, atol=1e-3)


def test_identity_outside_training_and_float32_in_range():
    x = np.random.default_rng(1).uniform(0, 255, (4, SIZE, SIZE, 3)).astype("float32")
    layer = FusedAugment(AugmentConfig(method="fused"), seed=0)
    np.testing.assert_array_equal(layer(tf.constant(x), training=False).numpy(), x)
    out = layer(tf.constant(x), training=True)
    assert out.dtype == tf.float32 and out.shape == x.shape
    assert 0.0 <= float(tf.reduce_min(out)) and float(tf.reduce_max(out)) <= 255.0


def test_brightness_adds_one_offset_per_image_within_its_strength():
    x = mid_range_batch()
    delta = run(only(brightness=0.2), x) - x
    offsets = delta.mean(axis=(1, 2, 3))
    np.testing.assert_allclose(delta, offsets[:, None, None, None] * np.ones_like(x), atol=1e-3)
    assert np.abs(offsets).max() <= 0.2 * 255 + 1e-3
    assert len(np.unique(np.round(offsets, 3))) == len(x)  # each image its own draw


def test_contrast_scales_about_each_channels_mean():
    x = mid_range_batch()
    out = run(only(contrast=0.2), x)
    mean = x.mean(axis=(1, 2), keepdims=True)
    np.testing.assert_allclose(out.mean(axis=(1, 2), keepdims=True), mean, atol=1e-2)
    factor = ((out - mean) / (x - mean + 1e-6))[np.abs(x - mean) > 20]
    assert 0.8 - 1e-3 <= factor.min() and factor.max() <= 1.2 + 1e-3


def test_saturation_keeps_the_luma_and_greys():
    x = mid_range_batch()
    out = run(only(saturation=0.2), x)
    np.testing.assert_allclose(out @ np.array(LUMA), x @ np.array(LUMA), atol=1e-2)
    assert not np.allclose(out, x, atol=1.0)
    grey = np.repeat(x[..., :1], 3, axis=-1)
    np.testing.assert_allclose(run(only(saturation=0.2), grey), grey, atol=1e-2)


def test_hue_rotates_about_the_grey_axis_by_at_most_its_strength():
    x = mid_range_batch()
    out = run(only(hue=0.04), x)
    # A rotation about (1, 1, 1) keeps each pixel's channel mean and its distance from grey.
    np.testing.assert_allclose(out.mean(axis=-1), x.mean(axis=-1), atol=1e-2)
    chroma_in = x - x.mean(axis=-1, keepdims=True)
    chroma_out = out - out.mean(axis=-1, keepdims=True)
    np.testing.assert_allclose(
        np.linalg.norm(chroma_out, axis=-1), np.linalg.norm(chroma_in, axis=-1), atol=1e-2
    )
    cos = (chroma_in * chroma_out).sum(-1) / (
        np.linalg.norm(chroma_in, axis=-1) * np.linalg.norm(chroma_out, axis=-1) + 1e-6
    )
    angle = np.degrees(np.arccos(np.clip(cos, -1, 1)))
    assert angle.max() <= 0.04 / 2 * 360 + 0.5  # at most 2% of the wheel (7.2 degrees)
    assert angle.mean() > 0.1


def test_the_warp_keeps_flat_images_and_moves_within_its_strength():
    flat = np.full((8, SIZE, SIZE, 3), 100.0, np.float32)
    np.testing.assert_allclose(run(only(zoom=0.2, shift=0.1, rotation=0.03), flat), flat, atol=1e-3)
    # A bright dot in the centre: zoom, shift and rotation move it by at most the shift
    # (the centre is the fixed point of zoom and rotation).
    dot = np.zeros((64, SIZE, SIZE, 3), np.float32)
    dot[:, 15:17, 15:17] = 255.0
    out = run(only(zoom=0.2, shift=0.1, rotation=0.03), dot).mean(axis=-1)
    ys, xs = np.indices((SIZE, SIZE))
    weight = out.sum(axis=(1, 2))
    assert (weight > 0).all()
    cy = (out * ys).sum(axis=(1, 2)) / weight
    cx = (out * xs).sum(axis=(1, 2)) / weight
    assert np.abs(cy - 15.5).max() <= 0.1 * SIZE + 1.0
    assert np.abs(cx - 15.5).max() <= 0.1 * SIZE + 1.0
    assert np.std(cx) > 0.5 and np.std(cy) > 0.5  # the shifts vary per image


def test_zoom_scales_about_the_centre_within_its_range():
    # A centred square of side 8: zoom in (factor down to 0.8) enlarges it up to 1.25x,
    # zoom out (up to 1.1) shrinks it to 1/1.1.
    square = np.zeros((64, SIZE, SIZE, 3), np.float32)
    square[:, 12:20, 12:20] = 255.0
    area = (run(only(zoom=0.2), square).mean(axis=-1) / 255.0).sum(axis=(1, 2))
    side = np.sqrt(area)
    assert 8 / 1.1 - 0.5 <= side.min() and side.max() <= 8 / 0.8 + 0.5
    assert side.max() > 8.5 and side.min() < 8.0  # both directions drawn


def test_same_seed_same_draws_and_the_images_differ_from_each_other():
    x = np.repeat(mid_range_batch(1), 8, axis=0)
    config = AugmentConfig(method="fused")
    first, again = run(config, x, seed=5), run(config, x, seed=5)
    np.testing.assert_allclose(first, again, atol=1e-4)
    flat = first.reshape(len(first), -1)
    assert len({row.tobytes() for row in flat}) == len(flat)


def test_fused_is_one_layer_and_computes_in_float32_under_mixed_precision():
    previous = keras.mixed_precision.global_policy().name
    try:
        keras.mixed_precision.set_global_policy("mixed_float16")
        augmenter = build_augmenter(AugmentConfig(method="fused"), seed=0)
        assert [type(layer).__name__ for layer in augmenter.layers] == ["FusedAugment"]
        assert augmenter.layers[0].compute_dtype == "float32"
        assert augmenter(tf.fill((2, SIZE, SIZE, 3), 100.0), training=True).dtype == tf.float32
    finally:
        keras.mixed_precision.set_global_policy(previous)
    blur = build_augmenter(AugmentConfig(method="fused", blur=0.5), seed=0)
    assert [type(layer).__name__ for layer in blur.layers] == ["FusedAugment", "RandomGaussianBlur"]


def test_unknown_method_is_refused_by_name():
    with pytest.raises(ValueError, match="augmentation method must be one of fused, layers"):
        AugmentConfig(method="warp")
    with pytest.raises(ValueError, match="--augmentation must be one of fused, layers"):
        TrainConfig(data_dir="d", output_dir="o", augmentation="warp").validate()
