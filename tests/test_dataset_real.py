"""Builds every config from the real FlickrLogos-27 archive and checks counts and leaks."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

import pytest

pytestmark = pytest.mark.real_data

EXPECTED_NAMES = (
    "Adidas Apple BMW Citroen Cocacola DHL Fedex Ferrari Ford Google HP Heineken Intel "
    "McDonalds Mini Nbc Nike Pepsi Porsche Puma RedBull Sprite Starbucks Texaco Unicef "
    "Vodafone Yahoo"
).split()
EXPECTED_SPLITS = {
    "images": {"train": 645, "validation": 160, "test": 270},
    "crops": {"train": 890, "validation": 182, "test": 188},
}


@pytest.fixture(scope="module")
def real(real_archive: Path, tmp_path_factory: pytest.TempPathFactory):
    """``(index, {config: [(split, example), ...]}, {config: builder})`` of the real data."""
    import tensorflow_datasets as tfds

    import tfds_flickr27
    from tfds_flickr27 import archive

    data_dir = tmp_path_factory.mktemp("real_tfds")
    examples, builders = {}, {}
    for config in tfds_flickr27.CONFIG_NAMES:
        builder = tfds_flickr27.build_dataset(config, data_dir, manual_dir=real_archive.parent)
        builders[config] = builder
        examples[config] = [
            (split, example)
            for split in builder.info.splits
            for example in tfds.as_numpy(
                builder.as_dataset(split, decoders={"image": tfds.decode.SkipDecoding()})
            )
        ]
    return archive.scan(real_archive), examples, builders


def _name(example, key: str = "filename") -> str:
    return example[key].decode()


def test_class_names_are_exact(real):
    import tfds_flickr27

    assert list(tfds_flickr27.CLASS_NAMES) == EXPECTED_NAMES
    assert tfds_flickr27.LABEL_NAMES == (*EXPECTED_NAMES, "none")


@pytest.mark.parametrize("config", ["images", "crops"])
def test_split_sizes(real, config):
    _, examples, _ = real
    assert Counter(split for split, _ in examples[config]) == EXPECTED_SPLITS[config]


def test_images_per_class_and_original_bytes(real):
    index, examples, _ = real
    names = [*EXPECTED_NAMES, "none"]
    per_class: Counter[str] = Counter()
    for split, example in examples["images"]:
        # The stored JPEG is the source file, byte for byte.
        assert hashlib.sha256(example["image"]).hexdigest() == index.sha256[_name(example)]
        if split == "test":
            assert len(example["objects"]["label"]) == 0
            per_class["test:" + names[example["label"]]] += 1
        else:
            per_class.update(names[i] for i in example["labels"])
            per_class[f"{split}-primary:{names[example['label']]}"] += 1
    # 30 images per class; 1 Fedex and 3 Porsche images duplicate query images: left out.
    left_out = {"Fedex": 1, "Porsche": 3}
    for name in EXPECTED_NAMES:
        assert per_class[name] == 30 - left_out.get(name, 0), name
        assert per_class[f"test:{name}"] == 5, name
        assert 5 <= per_class[f"validation-primary:{name}"] <= 6, name
    assert per_class["test:none"] == 135


def test_crops_per_class(real):
    index, examples, _ = real
    boxes = Counter(box.label for box in index.training.boxes)
    crops = Counter(EXPECTED_NAMES[example["label"]] for _, example in examples["crops"])
    assert crops == boxes and sum(crops.values()) == 1260
    for split in ("train", "validation", "test"):
        present = {EXPECTED_NAMES[e["label"]] for s, e in examples["crops"] if s == split}
        assert present == set(EXPECTED_NAMES), split


def test_no_image_crosses_splits(real):
    index, examples, _ = real
    query_hashes = {index.sha256[name] for name in index.query}
    for config, rows in examples.items():
        hashes: dict[str, set[str]] = {}
        for split, example in rows:
            hashes.setdefault(split, set()).add(index.sha256[_name(example)])
        splits = sorted(hashes)
        for i, a in enumerate(splits):
            for b in splits[i + 1 :]:
                assert not hashes[a] & hashes[b], f"{config}: {a} and {b} share images"
        for split in ("train", "validation"):
            assert not hashes[split] & query_hashes, f"{config}/{split} holds a query image"


@pytest.mark.parametrize("config", ["images", "crops"])
def test_every_image_decodes_and_every_box_fits(real, config):
    index, _, builders = real
    assert index.unusable == {}
    metadata = builders[config].info.metadata
    assert metadata["num_skipped_images"] == 0
    assert metadata["num_rejected_boxes"] == 0 and metadata["num_clipped_boxes"] == 0
    # The one zero-area box, by line of the training annotation file.
    (where, box), *others = metadata["zero_area_boxes"].items()
    assert not others and "2662264721.jpg RedBull 3 197 3 197" in box
    assert where.startswith("flickr_logos_27_dataset_training_set_annotation.txt:")
