"""tf.data pipelines: shapes, value range, no flips, caching, one shared preprocessing."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from logo_batch.data import pipeline as data
from logo_batch.inference.preprocessing import PREPROCESSING_ID, preprocess_image_file
from logo_batch.training.augment import METHODS, AugmentConfig, build_augmenter, make_augment_fn

SIZE = 32


@pytest.fixture(scope="module")
def crops_train(synthetic_data_dir):
    return data.load_split(synthetic_data_dir, "crops", "train")


def _counting(records: tf.data.Dataset, counter: tf.Variable) -> tf.data.Dataset:
    """Records that count how often they are read (i.e. decoded downstream)."""

    def count(image, label):
        counter.assign_add(1)
        return image, label

    return records.map(count)


def test_split_info(crops_train):
    assert crops_train.num_examples > 0
    assert crops_train.class_names[-1] == "none"
    assert len(crops_train.logo_class_names) == 27
    assert crops_train.none_index == 27


def test_training_batches_shape_dtype_range(crops_train):
    ds = data.make_dataset(
        crops_train.records,
        image_size=SIZE,
        batch_size=8,
        training=True,
        num_classes=27,
        one_hot=True,
        augment=make_augment_fn(AugmentConfig(blur=0.5), seed=1),
        sample_weights=np.full(27, 2.0, np.float32),
    )
    images, labels, weights = next(iter(ds))
    assert images.shape == (8, SIZE, SIZE, 3) and images.dtype == tf.float32
    assert 0.0 <= float(tf.reduce_min(images)) and float(tf.reduce_max(images)) <= 255.0
    assert labels.shape == (8, 27) and np.allclose(labels.numpy().sum(axis=1), 1.0)
    assert np.allclose(weights.numpy(), 2.0)


def test_same_tensor_as_shared_preprocessing(crops_train):
    """A record through tf.data equals the file path used by predict and Beam."""
    raw = [(b.numpy(), int(y)) for b, y in crops_train.records.take(3)]
    records = tf.data.Dataset.from_tensor_slices(
        ([b for b, _ in raw], np.array([y for _, y in raw], np.int64))
    )
    ds = data.make_dataset(records, image_size=SIZE, batch_size=3)
    images, labels = next(iter(ds))
    for (jpeg, label), image, got_label in zip(raw, images.numpy(), labels.numpy(), strict=True):
        np.testing.assert_allclose(image, preprocess_image_file(jpeg, SIZE), atol=0.01)
        assert label == got_label


def test_same_tensor_as_shared_preprocessing_at_every_dct_ratio():
    """Photos large enough to be decoded at 1/2, 1/4 and 1/8 (and one that is not):
    tf.data's model inputs equal the files' through predict and Beam's function."""
    from image_files import encode
    from PIL import Image

    from logo_batch.inference.preprocessing import dct_ratio

    rng = np.random.default_rng(5)
    shapes = [(SIZE + 5, SIZE + 9), (2 * SIZE + 3, 3 * SIZE), (4 * SIZE, 5 * SIZE + 1),
              (8 * SIZE + 7, 9 * SIZE)]  # fmt: skip
    assert [dct_ratio(h, w, SIZE) for h, w in shapes] == [1, 2, 4, 8]
    jpegs = []
    for height, width in shapes:
        pixels = np.linspace(0, 255, height * width * 3).reshape(height, width, 3)
        pixels = np.clip(pixels + rng.normal(0, 25, pixels.shape), 0, 255).astype(np.uint8)
        jpegs.append(encode(Image.fromarray(pixels), "JPEG", quality=80))
    records = tf.data.Dataset.from_tensor_slices((jpegs, np.arange(len(jpegs), dtype=np.int64)))
    images, _ = next(iter(data.make_dataset(records, image_size=SIZE, batch_size=len(jpegs))))
    for jpeg, image in zip(jpegs, images.numpy(), strict=True):
        # the same decode; Pillow's resize gives TensorFlow's pixels to float rounding
        np.testing.assert_allclose(image, preprocess_image_file(jpeg, SIZE), atol=0.01)


@pytest.mark.parametrize("method", METHODS)
def test_augmentation_never_flips(method):
    layers = build_augmenter(AugmentConfig(method=method)).layers
    assert not any("flip" in type(layer).__name__.lower() for layer in layers)
    image = np.zeros((64, SIZE, SIZE, 3), np.float32)
    image[:, :, : SIZE // 2] = 255.0  # bright left half, dark right half
    augment = make_augment_fn(AugmentConfig(blur=1.0, method=method), seed=3)
    for _ in range(3):
        out = augment(tf.constant(image)).numpy()
        left = out[:, :, : SIZE // 2].mean(axis=(1, 2, 3))
        right = out[:, :, SIZE // 2 :].mean(axis=(1, 2, 3))
        assert (left > right + 50).all(), "an augmented image looks mirrored"
        assert not np.array_equal(out, image)
        assert 0.0 <= out.min() and out.max() <= 255.0


def test_memory_cache_decodes_once(crops_train):
    counter = tf.Variable(0, dtype=tf.int64)
    ds = data.make_dataset(
        _counting(crops_train.records, counter),
        image_size=SIZE,
        batch_size=16,
        training=True,
        num_classes=27,
        augment=make_augment_fn(),
    )
    for _ in range(3):  # three epochs
        seen = sum(int(labels.shape[0]) for _, labels in ds)
    assert seen == crops_train.num_examples
    assert int(counter.numpy()) == crops_train.num_examples


def test_file_cache_is_written_and_reused(crops_train, tmp_path):
    cache = tmp_path / "cache"
    first = data.make_dataset(
        crops_train.records, image_size=SIZE, batch_size=16, cache=str(cache), cache_name="t"
    )
    expected = np.concatenate([x.numpy() for x, _ in first])
    # Named after the preprocessing recipe: an earlier recipe's cache is never reused.
    assert list(cache.glob(f"t_32px_{PREPROCESSING_ID}*.index")), "no file cache written"
    counter = tf.Variable(0, dtype=tf.int64)
    again = data.make_dataset(
        _counting(crops_train.records, counter),
        image_size=SIZE,
        batch_size=16,
        cache=str(cache),
        cache_name="t",
    )
    assert np.array_equal(np.concatenate([x.numpy() for x, _ in again]), expected)
    assert int(counter.numpy()) == 0, "file cache was not used: records were read again"


def test_none_images_filtered_only_when_asked(synthetic_data_dir):
    test = data.load_split(synthetic_data_dir, "images", "test")
    labels = data.split_labels(test.records)
    assert (labels == 27).any()
    kept = data.make_dataset(test.records, image_size=16, batch_size=64, num_classes=27)
    kept_labels = np.concatenate([y.numpy() for _, y in kept])
    assert kept_labels.size == (labels < 27).sum() and kept_labels.max() < 27


def test_class_weights_balanced():
    weights = data.class_weights([0, 0, 0, 1], num_classes=3)
    assert weights.tolist() == pytest.approx([4 / 6, 2.0, 1.0])


def test_missing_dataset_names_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match=str(tmp_path)):
        data.load_split(tmp_path, "crops", "train")
