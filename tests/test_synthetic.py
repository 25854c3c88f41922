"""The synthetic archive: real layout and quirks, deterministic, learnable."""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from logo_batch import cli
from tfds_flickr27 import synthetic

ROOT = "flickr_logos_27_dataset"


def _members(archive: Path) -> dict[str, bytes]:
    """All files of the outer and inner tar (inner images under their basename)."""
    files: dict[str, bytes] = {}
    with tarfile.open(archive, "r:gz") as outer:
        for member in outer.getmembers():
            if member.isfile():
                files[member.name] = outer.extractfile(member).read()
    inner = files[f"{ROOT}/{ROOT}_images.tar.gz"]
    with tarfile.open(fileobj=io.BytesIO(inner), mode="r:gz") as tar:
        for member in tar.getmembers():
            if member.isfile():
                files[Path(member.name).name] = tar.extractfile(member).read()
    return files


def test_annotations_parse_with_the_tfds_package(tmp_path: Path):
    """What the generator writes is read back by the builder's parsers, every class in it."""
    from tfds_flickr27 import annotations

    archive = synthetic.write_synthetic_archive(
        tmp_path / "a.tar.gz", images_per_class=3, query_per_class=1, image_size=48
    )
    files = _members(archive)
    training = annotations.parse_training(files[f"{ROOT}/{ROOT}_training_set_annotation.txt"])
    query = annotations.parse_query(files[f"{ROOT}/{ROOT}_query_set_annotation.txt"])
    boxed = {box.label for box in training.boxes + training.zero_area}
    assert sorted(boxed) == sorted(annotations.CLASS_NAMES)
    assert set(query.values()) == set(annotations.LABEL_NAMES)
    images = Counter(label for labels in training.labels.values() for label in labels)
    # 3 images per class; Cocacola also on a Pepsi image, Adidas has a byte-identical copy.
    assert images == {**dict.fromkeys(annotations.CLASS_NAMES, 3), "Cocacola": 4, "Adidas": 4}
    assert set(training.labels) | set(query) <= set(files)
    # Each class is drawn differently.
    assert len({synthetic.class_style(name) for name in annotations.CLASS_NAMES}) == 27


def test_layout_and_quirks(synthetic_archive: Path):
    with tarfile.open(synthetic_archive, "r:gz") as outer:
        names = outer.getnames()
    assert names == [
        f"{ROOT}",
        f"{ROOT}/{ROOT}_distractor_set_urls.txt",
        f"{ROOT}/{ROOT}_images.tar.gz",
        f"{ROOT}/{ROOT}_query_set_annotation.txt",
        f"{ROOT}/{ROOT}_training_set_annotation.txt",
    ]
    files = _members(synthetic_archive)
    training = files[f"{ROOT}/{ROOT}_training_set_annotation.txt"].decode()
    query = files[f"{ROOT}/{ROOT}_query_set_annotation.txt"].decode()
    lines = training.split("\r\n")
    assert lines[-1] == "" and all(line.endswith(" ") for line in lines[:-1])
    rows = [line.split() for line in lines[:-1]]
    assert {row[1] for row in rows} == set(synthetic.CLASS_NAMES)
    # Cumulative subsets: every row of subset 1 is repeated in subset 2.
    subset = {k: {tuple(r[:2] + r[3:]) for r in rows if r[2] == k} for k in ("1", "2", "3")}
    assert subset["1"] and subset["1"] < subset["2"] < subset["3"]
    assert any(r[3] == r[5] or r[4] == r[6] for r in rows), "no zero-area box"
    labels_of: dict[str, set[str]] = {}
    for row in rows:
        labels_of.setdefault(row[0], set()).add(row[1])
    assert {"Pepsi", "Cocacola"} in list(labels_of.values())
    query_rows = [line.split("\t") for line in query.split("\r\n")[:-1]]
    assert sum(label == "none" for _, label in query_rows) == 27 * 2
    digest = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    train_hashes = Counter(digest[name] for name in labels_of)
    assert max(train_hashes.values()) >= 2, "no duplicate inside the training set"
    crossing = {name for name, _ in query_rows if digest[name] in train_hashes}
    assert len(crossing) >= 1
    for name in labels_of:  # every annotated image exists and is a JPEG
        assert Image.open(io.BytesIO(files[name])).format == "JPEG"


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path: Path):
    kwargs = {"images_per_class": 2, "query_per_class": 1, "image_size": 48}
    a = synthetic.write_synthetic_archive(tmp_path / "a.tar.gz", seed=3, **kwargs)
    b = synthetic.write_synthetic_archive(tmp_path / "b.tar.gz", seed=3, **kwargs)
    c = synthetic.write_synthetic_archive(tmp_path / "c.tar.gz", seed=4, **kwargs)
    assert a.read_bytes() == b.read_bytes() != c.read_bytes()
    assert gzip.open(a).read(1)  # a valid gzip stream


def test_rejects_too_small_sizes(tmp_path: Path):
    with pytest.raises(ValueError, match="images_per_class >= 2"):
        synthetic.write_synthetic_archive(tmp_path / "x.tar.gz", images_per_class=1)


def test_cli_make_synthetic(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    out = tmp_path / "cli.tar.gz"
    code = cli.main(["make-synthetic", str(out), "--images-per-class", "2", "--seed", "1"])
    assert code == 0 and out.is_file()
    assert str(out) in capsys.readouterr().out
    expected = synthetic.write_synthetic_archive(
        tmp_path / "api.tar.gz", images_per_class=2, seed=1
    )
    assert out.read_bytes() == expected.read_bytes()


def _crops(archive: Path, size: int = 24) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every non-zero box as a ``size`` x ``size`` crop, its class and its image's name."""
    files = _members(archive)
    training = files[f"{ROOT}/{ROOT}_training_set_annotation.txt"].decode()
    seen = set()
    images, labels, sources = [], [], []
    for line in training.split("\r\n")[:-1]:
        name, label, _, *coords = line.split()
        box = tuple(int(value) for value in coords)
        if (name, label, box) in seen or box[0] == box[2] or box[1] == box[3]:
            continue
        seen.add((name, label, box))
        image = Image.open(io.BytesIO(files[name])).convert("RGB").crop(box)
        images.append(np.asarray(image.resize((size, size))))
        labels.append(synthetic.CLASS_NAMES.index(label))
        sources.append(name)
    return np.stack(images), np.array(labels), np.array(sources)


def test_a_tiny_cnn_learns_the_classes(synthetic_archive: Path):
    import keras

    images, labels, sources = _crops(synthetic_archive)
    # Hold out whole images (about a quarter), chosen by a hash of the name.
    held_out = np.array([hashlib.sha256(s.encode()).digest()[0] < 64 for s in sources])
    assert 0 < held_out.sum() < len(held_out) / 2
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((24, 24, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalMaxPooling2D(),
            keras.layers.Dense(27, activation="softmax"),
        ]
    )
    model.compile(
        keras.optimizers.Adam(1e-2), "sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    model.fit(images[~held_out], labels[~held_out], epochs=12, batch_size=16, verbose=0)
    _, accuracy = model.evaluate(images[held_out], labels[held_out], verbose=0)
    assert accuracy > 0.5, f"held-out accuracy {accuracy:.2f} (chance 1/27 = 0.04)"
