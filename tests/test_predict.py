"""``logo-batch predict``: many files at once, text/CSV/JSON, bad files reported."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil

import numpy as np
import pytest
from PIL import Image

from logo_batch.cli import main
from logo_batch.inference.bundle import BundleMetadata, save_bundle
from logo_batch.result_csv import CSV_COLUMNS
from logo_batch.training import models


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


@pytest.fixture(scope="module")
def background_bundle(tmp_path_factory):
    """A 4-class bundle with the background class ``none`` last, and three photos."""
    from beam_support import make_background_bundle

    root = tmp_path_factory.mktemp("whole")
    bundle = make_background_bundle(root / "bundle")
    rng = np.random.default_rng(5)
    paths = []
    for i, (h, w) in enumerate([(60, 80), (45, 45), (30, 70)]):
        path = root / f"photo{i}.png"
        Image.fromarray(rng.integers(0, 256, (h, w, 3), np.uint8)).save(path)
        paths.append(str(path))
    return str(bundle), paths


def _csv(capsys) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(capsys.readouterr().out)))


def test_auto_mode_is_whole_for_a_background_bundle(background_bundle, capsys):
    bundle, paths = background_bundle
    assert main(["predict", bundle, *paths, "--format", "csv", "--min-score", "0"]) == 0
    rows = _csv(capsys)
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {r["mode"] for r in rows} == {"whole"}
    for row in rows:
        labels = row["top_labels"].split(";")
        assert len(labels) == 3 and "none" not in labels  # top 5 (default): the 3 brands
        assert row["label"] == labels[0]
        x0, y0, x1, y1 = map(int, row["box"].split())
        assert 0 <= x0 < x1 and 0 <= y0 < y1
    # --mode whole says the same; --mode single scores each file once, over all classes.
    assert main(["predict", bundle, *paths, "--format", "csv", "--mode", "whole",
                 "--min-score", "0"]) == 0  # fmt: skip
    assert _csv(capsys) == rows
    assert main(["predict", bundle, *paths, "--format", "csv", "--mode", "single"]) == 0
    single = _csv(capsys)
    assert {r["mode"] for r in single} == {"single"} and {r["box"] for r in single} == {""}
    assert all(len(r["top_labels"].split(";")) == 4 for r in single)  # all 4 classes


def test_whole_mode_rows_equal_classify_photos(background_bundle):
    from logo_batch.inference.bundle import load_bundle
    from logo_batch.inference.predict import photo_to_prediction, predict_files
    from logo_batch.inference.preprocessing import load_image
    from logo_batch.inference.whole_photo import classify_photos

    bundle_dir, paths = background_bundle
    bundle = load_bundle(bundle_dir)
    photos = classify_photos(
        bundle.model, [load_image(p) for p in paths], bundle.image_size,
        bundle.class_names, "none",
    )  # fmt: skip
    want = [
        photo_to_prediction(p, photo, bundle.class_names, "none", top_k=2)
        for p, photo in zip(paths, photos, strict=True)
    ]
    for batch_size in (1, 14, 100):  # any batching, the same rows
        got = predict_files(bundle, paths, top_k=2, batch_size=batch_size, mode="whole")
        for a, b in zip(got, want, strict=True):
            assert (a.path, a.label, a.top_labels, a.box, a.mode) == (
                b.path, b.label, b.top_labels, b.box, b.mode,
            )  # fmt: skip
            np.testing.assert_allclose(a.top_scores, b.top_scores, atol=2e-6)


def test_whole_mode_decodes_each_file_once_and_reports_bad_files(
    background_bundle, tmp_path, monkeypatch, capsys
):
    from logo_batch.inference import whole_photo

    bundle, paths = background_bundle
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    decoded = []
    real_load = whole_photo.load_photo

    def counting_load(path, **kwargs):
        decoded.append(path)
        return real_load(path, **kwargs)

    monkeypatch.setattr(whole_photo, "load_photo", counting_load)
    argv = ["predict", bundle, paths[0], str(broken), *paths[1:], "--format", "csv"]
    assert main([*argv, "--batch-size", "5"]) == 1
    rows = _csv(capsys)
    assert sorted(decoded) == sorted([*paths, str(broken)])  # once each
    assert [r["path"] for r in rows] == [paths[0], str(broken), *paths[1:]]  # input order
    bad = rows[1]
    assert bad["error"] and (bad["label"], bad["box"], bad["mode"]) == ("", "", "whole")


def test_whole_mode_threshold_defaults_to_the_bundles(background_bundle, tmp_path, capsys):
    bundle, paths = background_bundle
    strict = tmp_path / "strict"
    shutil.copytree(bundle, strict)
    data = json.loads((strict / "metadata.json").read_text())
    data["rejection_threshold"] = 0.99  # no brand of a random model reaches it
    (strict / "metadata.json").write_text(json.dumps(data))
    assert main(["predict", str(strict), *paths, "--format", "json"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert {r["label"] for r in results} == {"none"}  # rejected: the background class
    assert all(r["box"] and r["top_labels"][0] != "none" for r in results)
    assert main(["predict", str(strict), *paths, "--format", "json", "--min-score", "0"]) == 0
    assert "none" not in {r["label"] for r in json.loads(capsys.readouterr().out)}


def test_old_bundle_auto_is_single_and_whole_can_be_asked_for(bundle_and_images, capsys):
    bundle, paths, _ = bundle_and_images
    assert main(["predict", bundle, *paths, "--format", "csv"]) == 0
    rows = _csv(capsys)
    assert {(r["mode"], r["box"]) for r in rows} == {("single", "")}
    # Whole mode on a bundle without a background class: rejected photos are "unknown"
    # (its threshold 0.99 is the default in whole mode; every score is 1/3).
    assert main(["predict", bundle, *paths, "--format", "csv", "--mode", "whole"]) == 0
    rows = _csv(capsys)
    assert {(r["mode"], r["label"]) for r in rows} == {("whole", "unknown")}
    assert all(r["box"] for r in rows)


def test_text_output_in_whole_mode_shows_the_box(background_bundle, capsys):
    bundle, paths = background_bundle
    assert main(["predict", bundle, paths[0], "--batch_size", "3"]) == 0
    out = capsys.readouterr().out
    assert re.fullmatch(rf"{re.escape(paths[0])}: \S+ \(\S+\)  \[.*\]  box \d+ \d+ \d+ \d+\n", out)
    with pytest.raises(SystemExit) as stop:  # a usage error (tests/test_options.py)
        main(["predict", bundle, paths[0], "--batch-size", "0"])
    assert stop.value.code == 2
    assert "argument --batch-size: must be a whole number >= 1" in capsys.readouterr().err
