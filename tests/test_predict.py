"""``logo-batch predict``: many files at once, text/CSV/JSON, bad files reported."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pytest
from PIL import Image

from logo_batch import models
from logo_batch.bundle import BundleMetadata, save_bundle
from logo_batch.cli import main
from logo_batch.predict import CSV_COLUMNS


@pytest.fixture(scope="module")
def bundle_and_images(tmp_path_factory):
    root = tmp_path_factory.mktemp("predict")
    model = models.build_model("tiny_cnn", 3, 32, "none")
    # Zero output weights: every image scores exactly 1/3 for each class, whatever the
    # random initialisation of the rest, so the threshold tests below are exact.
    predictions = model.get_layer("predictions")
    predictions.set_weights([np.zeros_like(w) for w in predictions.get_weights()])
    metadata = BundleMetadata(["Adidas", "Apple", "BMW"], 32, "tiny_cnn", "none")
    metadata.rejection_threshold = 0.99
    save_bundle(model, metadata, root / "bundle", export_serving=False)
    paths = []
    for i in range(3):
        path = root / f"img{i}.jpg"
        Image.fromarray(np.full((40, 50, 3), 60 * i, np.uint8)).save(path)
        paths.append(str(path))
    broken = root / "broken.jpg"
    broken.write_bytes(b"not an image")
    return str(root / "bundle"), paths, str(broken)


def test_csv_output_one_row_per_file(bundle_and_images, capsys):
    bundle, paths, broken = bundle_and_images
    code = main(["predict", bundle, *paths, broken, "--format", "csv", "--top-k", "2"])
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert code == 1  # one file failed
    assert [r["path"] for r in rows] == [*paths, broken]
    assert tuple(rows[0]) == CSV_COLUMNS
    assert all(len(r["top_labels"].split(";")) == 2 for r in rows[:3])
    assert rows[3]["error"] and not rows[3]["label"]


def test_json_output_and_bundle_threshold(bundle_and_images, capsys):
    bundle, paths, _ = bundle_and_images
    assert main(["predict", bundle, *paths, "--format", "json", "--min-score", "bundle"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert len(results) == 3
    # Every score is 1/3, below the bundle's threshold 0.99: every image is "unknown".
    assert {r["label"] for r in results} == {"unknown"}
    assert all(r["score"] == pytest.approx(1 / 3) for r in results)
    assert all(len(r["top_labels"]) == 3 for r in results)
    # ... and above a given threshold of 0.3, no image is.
    assert main(["predict", bundle, *paths, "--format", "json", "--min-score", "0.3"]) == 0
    assert "unknown" not in {r["label"] for r in json.loads(capsys.readouterr().out)}


def test_text_output(bundle_and_images, capsys):
    bundle, paths, _ = bundle_and_images
    assert main(["predict", bundle, paths[0]]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{paths[0]}: ") and "[" in out


def test_not_a_bundle_is_a_clear_error(tmp_path, capsys):
    assert main(["predict", str(tmp_path), "x.jpg"]) == 1
    assert "not a logo-batch model bundle" in capsys.readouterr().err
