"""Your own logos end to end: a generated folder in each layout -> ``logo-batch dataset
build`` -> ``tfds.load`` in a fresh process -> ``train --dataset`` -> ``evaluate``."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
from collections import Counter
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

from logo_batch.cli import main
from logo_batch.data import pipeline as data
from logo_batch.inference.bundle import read_metadata
from tfds_flickr27 import Builder as Flickr27Builder
from tfds_logo_folder import check_name
from tfds_logo_folder.synthetic import DEFAULT_BRANDS, write_synthetic_folder

SPLITS = ("train", "validation", "test")
BRANDS = list(DEFAULT_BRANDS)  # "Acme", "Blue Bird", "zeta": sorted as Python sorts
OTHER_BRANDS = ("Acme", "Zed")
# name -> write_synthetic_folder arguments
LAYOUTS = {
    "crops_only": {"crops_per_brand": 8},
    "photos_only": {"photos_per_brand": 8},
    "crops_and_photos": {"crops_per_brand": 4, "photos_per_brand": 8},
    "with_none": {"photos_per_brand": 8, "none_photos": 6},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("own_logos")
    result = {}
    for seed, (name, sizes) in enumerate(LAYOUTS.items()):
        result[name] = write_synthetic_folder(root / name, image_size=64, seed=seed, **sizes)
    # byte-identical copies: a photo (with its rows) and a none/ photo equal to a photo
    with_none = result["with_none"]
    shutil.copy(with_none / "photos/00_000.jpg", with_none / "photos/copy.jpg")
    shutil.copy(with_none / "photos/01_000.jpg", with_none / "none/copy.jpg")
    boxes = (with_none / "boxes.csv").read_text().splitlines()
    copies = [line.replace("00_000.jpg", "copy.jpg") for line in boxes if "00_000.jpg" in line]
    (with_none / "boxes.csv").write_text("\n".join(boxes + copies) + "\n")
    return result


@pytest.fixture(scope="module")
def data_dir(folders, tmp_path_factory) -> Path:
    """Every layout built with ``logo-batch dataset build`` into one data_dir."""
    directory = tmp_path_factory.mktemp("own_tfds")
    other = write_synthetic_folder(
        directory.parent / "other_brands", OTHER_BRANDS, crops_per_brand=4, image_size=64
    )
    for name, folder in [*folders.items(), ("other_brands", other)]:
        args = ["dataset", "build", str(folder), "--name", name, "--data-dir", str(directory)]
        assert main(args) == 0, name
    return directory


def _examples(data_dir: Path, name: str, config: str) -> dict[str, list[tuple[str, str]]]:
    """Per split, (filename, label name) of every example."""
    builder = tfds.builder(f"{name}/{config}", data_dir=str(data_dir))
    names = builder.info.features["label"].names
    result = {}
    for split in builder.info.splits:
        ds = builder.as_dataset(split=split, decoders={"image": tfds.decode.SkipDecoding()})
        result[split] = [(ex["filename"].decode(), names[ex["label"]]) for ex in tfds.as_numpy(ds)]
    return result


def _spec(info) -> dict | str:
    """A feature's tensor info as nested dicts of text (order-free)."""
    return {k: _spec(v) for k, v in info.items()} if isinstance(info, dict) else repr(info)


def test_a_fresh_process_loads_every_layout_with_flickr27_features(data_dir, tmp_path):
    script = textwrap.dedent(
        """
        import json, sys
        import tensorflow_datasets as tfds

        def spec(info):
            return {k: spec(v) for k, v in info.items()} if isinstance(info, dict) else repr(info)

        result = {}
        for name in sys.argv[2:]:
            for config in ("images", "crops"):
                try:
                    splits, info = tfds.load(
                        f"{name}/{config}", data_dir=sys.argv[1], with_info=True
                    )
                except Exception as error:
                    result[f"{name}/{config}"] = type(error).__name__
                    continue
                result[f"{name}/{config}"] = {
                    "tensors": spec(info.features.get_tensor_info()),
                    "labels": info.features["label"].names,
                    "sizes": {s: sum(1 for _ in ds) for s, ds in splits.items()},
                }
        ours = [m for m in sys.modules if m.split(".")[0] in ("tfds_flickr27", "logo_batch")]
        ours += [m for m in sys.modules if m.split(".")[0] == "tfds_logo_folder"]
        print(json.dumps({"loaded": result, "ours": ours}))
        """
    )
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    env.pop("PYTHONPATH", None)
    proc = subprocess.run(
        [sys.executable, "-c", script, str(data_dir), *LAYOUTS],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    answer = json.loads(proc.stdout.strip().splitlines()[-1])
    assert answer["ours"] == []
    loaded = answer["loaded"]
    for config in ("images", "crops"):
        flickr27 = Flickr27Builder(config=config, data_dir=str(tmp_path / "unused")).info
        for name in LAYOUTS:
            got = loaded[f"{name}/{config}"]
            if name == "crops_only" and config == "images":
                assert got == "DatasetNotFoundError"  # no photo: no images config
                continue
            assert got["tensors"] == _spec(flickr27.features.get_tensor_info()), name
            assert got["labels"] == [*BRANDS, "none"]
            assert sum(got["sizes"].values()) > 0
    assert set(loaded["with_none/images"]["sizes"]) == set(SPLITS)


def test_photos_split_by_image_stratified_by_brand(data_dir):
    images = _examples(data_dir, "crops_and_photos", "images")
    crops = _examples(data_dir, "crops_and_photos", "crops")
    # 8 photos per brand: round(0.15 * 8) = 1 each to validation and test, 6 to train
    for split, expected in zip(SPLITS, (6, 1, 1), strict=True):
        assert Counter(label for _, label in images[split]) == dict.fromkeys(BRANDS, expected)
    # 4 crops per brand: 1 to validation, 1 to test, 2 to train
    for split, expected in zip(SPLITS, (2, 1, 1), strict=True):
        cut = Counter(label for f, label in crops[split] if f.startswith("crops/"))
        assert cut == dict.fromkeys(BRANDS, expected), split
    # every box's crop is in its photo's split; crops/ files are never photos
    for split in SPLITS:
        photos = {f for f, _ in images[split]}
        from_boxes = {f for f, _ in crops[split] if f.startswith("photos/")}
        assert from_boxes == photos


def test_byte_identical_files_stay_on_one_side_and_none_photos_go_to_test(data_dir):
    images = _examples(data_dir, "with_none", "images")
    where = {f: split for split, examples in images.items() for f, _ in examples}
    assert where["photos/copy.jpg"] == where["photos/00_000.jpg"]
    assert "none/copy.jpg" not in where  # byte-identical to a logo photo: skipped
    nones = {f for f, label in images["test"] if label == "none"}
    assert nones == {f"none/{i:03d}.jpg" for i in range(6)}
    assert all(label != "none" for split in ("train", "validation") for _, label in images[split])
    meta = tfds.builder("with_none/images", data_dir=str(data_dir)).info.metadata
    assert "byte-identical to photos/01_000.jpg" in meta["skipped_files"]["none/copy.jpg"]


def test_train_and_evaluate_with_background_and_context_on_your_brands(data_dir, tmp_path, capsys):
    run = tmp_path / "run"
    code = main(
        [
            "train", "--data-dir", str(data_dir), "--dataset", "with_none",
            "--output-dir", str(run), "--backbone", "tiny_cnn", "--weights", "none",
            "--image-size", "32", "--epochs", "1", "--fine-tune-epochs", "0",
            "--steps-per-epoch", "1", "--background", "1", "--context", "1",
            "--no-serving-export", "--mixed-precision", "off",
        ]
    )  # fmt: skip
    assert code == 0, capsys.readouterr().err
    meta = read_metadata(run / "bundle")
    assert meta.class_names == [*BRANDS, "none"] and meta.background_class == "none"
    assert meta.dataset["name"] == "with_none"
    assert meta.dataset["class_names"] == [*BRANDS, "none"]
    capsys.readouterr()
    code = main(
        [
            "evaluate", str(run / "bundle"), "--data-dir", str(data_dir),
            "--dataset", "with_none", "--config", "images", "--split", "test",
        ]
    )  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    labels = data.split_labels(
        data.load_split(data_dir, "images", "test", dataset="with_none").records
    )
    assert code == 0
    assert metrics["mode"] == "whole" and metrics["dataset"] == "with_none/images"
    assert metrics["num_none"] == 6 == int((labels == 3).sum())
    assert metrics["num_logo"] == int((labels < 3).sum()) >= 3
    assert 0.0 <= metrics["none_rejected"] <= 1.0
    # another dataset's brands are refused, not scored
    code = main(
        ["evaluate", str(run / "bundle"), "--data-dir", str(data_dir), "--dataset",
         "other_brands", "--config", "crops"]
    )  # fmt: skip
    assert (
        code == 1
        and "(the bundle trained on with_none: --dataset with_none)" in capsys.readouterr().err
    )


def test_the_photo_recipe_on_crops_alone_says_to_train_with_crops_only(data_dir, tmp_path, capsys):
    base = [
        "train", "--data-dir", str(data_dir), "--dataset", "crops_only",
        "--backbone", "tiny_cnn", "--weights", "none", "--image-size", "32",
        "--epochs", "1", "--fine-tune-epochs", "0", "--steps-per-epoch", "1",
        "--no-serving-export", "--no-tflite-export", "--mixed-precision", "off",
    ]  # fmt: skip
    assert main([*base, "--output-dir", str(tmp_path / "default")]) == 1
    err = capsys.readouterr().err
    assert "crops_only has no photos" in err and "--background, --context" in err
    assert "--crops-only" in err and "Traceback" not in err
    assert main([*base, "--output-dir", str(tmp_path / "crops"), "--crops-only"]) == 0
    meta = read_metadata(tmp_path / "crops" / "bundle")
    assert meta.class_names == BRANDS and meta.background_class is None


def test_a_rebuild_changes_nothing_and_a_changed_folder_needs_overwrite(folders, tmp_path, capsys):
    folder = tmp_path / "logos"
    shutil.copytree(folders["crops_only"], folder)
    args = ["dataset", "build", str(folder), "--name", "mine", "--data-dir", str(tmp_path / "d")]
    assert main(args) == 0
    record = tmp_path / "d/mine/crops/1.0.0/dataset_info.json"
    before = record.stat().st_mtime_ns, record.read_bytes()
    capsys.readouterr()
    assert main(args) == 0
    assert (
        "already built from these files and fractions; nothing changed" in capsys.readouterr().out
    )
    shutil.copy(folder / "crops/Acme/000.jpg", folder / "crops/Acme/new.jpg")
    assert main(args) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (record.stat().st_mtime_ns, record.read_bytes()) == before
    assert main([*args, "--overwrite"]) == 0
    assert capsys.readouterr().out.startswith("replaced mine")
    assert [p.name for p in (tmp_path / "d").iterdir()] == ["mine"]  # no temporary left


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("MyLogos", "snake_case"),
        ("my-logos", "snake_case"),
        ("1logos", "snake_case"),
        ("flickr_logos27", "FlickrLogos-27's own dataset"),
        ("mnist", "TFDS catalogue dataset"),
    ],
)
def test_a_dataset_name_must_be_new_snake_case(name, message):
    with pytest.raises(ValueError, match=message):
        check_name(name)
