"""The int8 model: `logo-batch quantize`, the precision inference resolves to, and
`predict`, `evaluate` and the Beam job running it."""

from __future__ import annotations

import csv
import io
import json
from contextlib import redirect_stdout

import numpy as np
import pytest
from beam_support import make_bundle
from PIL import Image
from training_support import tiny_config

from logo_batch.cli import main
from logo_batch.inference import engines
from logo_batch.inference.bundle import METADATA_FILE, BundleMetadata, load_bundle, read_metadata
from logo_batch.inference.cpu import CpuFeatures
from logo_batch.training import train

VNNI = CpuFeatures(frozenset({"avx512_vnni"}), onednn=True)
NO_UNITS = CpuFeatures(frozenset({"avx2"}), onednn=True)


def _metadata(quantization: dict, tflite: bool = False) -> BundleMetadata:
    checked = {engines.TFLITE_FLOAT32: {"kept_scores": True}} if tflite else {}
    return BundleMetadata(["a", "b"], 32, "tiny_cnn", quantization=quantization, engines=checked)


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch):
    monkeypatch.setattr(engines, "has_gpu", lambda: False)


def test_auto_picks_int8_only_for_a_kept_model_on_a_cpu_with_int8_units():
    kept, lost = _metadata({"kept_accuracy": True}), _metadata({"kept_accuracy": False})
    assert engines.resolve_engine("auto", kept, cpu=VNNI) == "tflite-int8"
    assert engines.resolve_engine("auto", kept, cpu=NO_UNITS) == "tf-float32"
    assert engines.resolve_engine("auto", lost, cpu=VNNI) == "tf-float32"
    assert engines.resolve_engine("auto", _metadata({}), cpu=VNNI) == "tf-float32"
    assert engines.resolve_engine("off", kept, cpu=VNNI) == "tf-float32"
    assert engines.resolve_engine("bfloat16", kept, cpu=VNNI) == "tf-bfloat16"
    # Asked for, int8 runs whatever the CPU and the check said.
    assert engines.resolve_engine("int8", lost, cpu=NO_UNITS) == "tflite-int8"


def test_float32_runs_on_tflite_only_where_the_export_checked_it():
    checked = _metadata({"kept_accuracy": True}, tflite=True)
    assert engines.resolve_engine("auto", checked, cpu=NO_UNITS) == "tflite-float32"
    assert engines.resolve_engine("off", checked, cpu=VNNI) == "tflite-float32"
    assert engines.resolve_engine("auto", checked, cpu=VNNI) == "tflite-int8"
    failed = BundleMetadata(
        ["a", "b"], 32, "tiny_cnn", engines={"tflite-float32": {"kept_scores": False}}
    )
    assert engines.resolve_engine("auto", failed, cpu=NO_UNITS) == "tf-float32"
    # GPUs keep the TensorFlow graph.
    assert engines.resolve_engine("auto", checked, cpu=VNNI, gpu=True) == "tf-float32"


def test_auto_keeps_float32_where_a_gpu_is_visible(monkeypatch):
    monkeypatch.setattr(engines, "has_gpu", lambda: True)
    kept = _metadata({"kept_accuracy": True}, tflite=True)
    assert engines.resolve_engine("auto", kept, cpu=VNNI) == "tf-float32"


def test_int8_without_an_int8_model_says_how_to_make_one():
    with pytest.raises(ValueError, match="logo-batch quantize"):
        engines.resolve_engine("int8", _metadata({}))
    with pytest.raises(ValueError, match="precision must be one of"):
        engines.resolve_engine("fp8", _metadata({}))


def test_quantize_refuses_a_folder_that_is_not_a_bundle(tmp_path, capsys):
    code = main(["quantize", str(tmp_path), "--data-dir", str(tmp_path)])
    assert code == 1 and "not a logo-batch model bundle" in capsys.readouterr().err


def test_predict_int8_without_an_int8_model_fails_before_reading_files(tmp_path, capsys):
    bundle = make_bundle(tmp_path / "bundle")
    code = main(["predict", str(bundle), str(tmp_path / "missing.jpg"), "--precision", "int8"])
    assert code == 1 and "logo-batch quantize" in capsys.readouterr().err


@pytest.fixture(scope="module")
def quantized(synthetic_data_dir, tmp_path_factory):
    """A tiny background bundle, quantized: (bundle dir, quantize's figures)."""
    config = tiny_config(
        synthetic_data_dir, tmp_path_factory.mktemp("int8") / "run", background=2,
        epochs=3, fine_tune_epochs=0,
    )  # fmt: skip
    bundle = train(config).bundle_dir
    before = (bundle / "model.keras").read_bytes()
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(["quantize", str(bundle), "--data-dir", str(synthetic_data_dir)])
    assert code == 0
    assert (bundle / "model.keras").read_bytes() == before  # the Keras model untouched
    return bundle, json.loads(out.getvalue())


def test_quantize_adds_the_int8_model_and_its_figures(quantized, synthetic_data_dir):
    bundle, figures = quantized
    assert (bundle / engines.INT8_FILE).stat().st_size == figures["bytes"] > 0
    assert read_metadata(bundle).quantization == figures
    assert figures["split"] == "crops/validation"
    # Calibration: the training crops (fewer than 1,000 here) plus 16 photos, 14 windows each.
    assert figures["calibration_inputs"] > 16 * 14
    for name in ("top1_float32", "top1_int8", "photos_top1_float32", "photos_top1_int8"):
        assert 0.0 <= figures[name] <= 1.0
    assert figures["kept_accuracy"] == all(
        figures[f"{p}int8"] >= figures[f"{p}float32"] - engines.MAX_TOP1_DROP
        for p in ("top1_", "photos_top1_")
    )
    assert not list(bundle.glob(".*tmp-*"))  # written atomically, nothing left over


def test_int8_model_scores_close_to_the_float32_model(quantized, synthetic_data_dir):
    from logo_batch.data.pipeline import load_split
    from logo_batch.evaluation.evaluate import predict_dataset

    bundle, _ = quantized
    loaded = load_bundle(bundle)
    model = engines.load_tflite(bundle, engines.INT8_FILE)
    records = load_split(synthetic_data_dir, "crops", "validation").records
    reference, _ = predict_dataset(loaded.model, records, loaded.image_size)
    scores, _ = predict_dataset(model, records, loaded.image_size)
    assert scores.shape == reference.shape
    np.testing.assert_allclose(scores.sum(axis=1), 1.0, atol=0.02)
    # int8 activations: each probability within a few quantization steps (1/256).
    assert np.abs(scores - reference).max() < 0.08
    # Any batch size runs the same model: one example alone gives the same scores.
    images = np.stack([np.full((32, 32, 3), 90.0, np.float32), np.zeros((32, 32, 3), np.float32)])
    np.testing.assert_allclose(model(images[:1]), model(images)[:1], atol=1e-6)
    with pytest.raises(ValueError, match="inputs of shape"):
        model(np.zeros((1, 16, 16, 3), np.float32))


def _photos(folder, count: int = 5):
    folder.mkdir()
    rng = np.random.default_rng(3)
    for index in range(count):
        pixels = rng.integers(0, 255, (48, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"p{index}.jpg")
    return folder


def _predict_rows(bundle, photos, precision: str, capsys) -> tuple[list[dict], str]:
    paths = sorted(str(p) for p in photos.iterdir())
    code = main(
        [
            "predict",
            str(bundle),
            *paths,
            "--format",
            "csv",
            "--top-k",
            "5",
            "--precision",
            precision,
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    return list(csv.DictReader(io.StringIO(captured.out))), captured.err


def test_predict_evaluate_and_beam_run_the_int8_model(
    quantized, synthetic_data_dir, tmp_path, capsys
):
    bundle, _ = quantized
    photos = _photos(tmp_path / "photos")
    fast, note = _predict_rows(bundle, photos, "int8", capsys)
    plain, plain_note = _predict_rows(bundle, photos, "off", capsys)
    assert "engine tflite-int8" in note and "engine tflite-float32" in plain_note
    assert [r["path"] for r in fast] == [r["path"] for r in plain] and len(fast) == 5
    assert all(r["mode"] == "whole" and not r["error"] for r in fast)
    assert any(r["top_scores"] != p["top_scores"] for r, p in zip(fast, plain, strict=True))

    code = main(
        ["evaluate", str(bundle), "--data-dir", str(synthetic_data_dir), "--config", "crops",
         "--split", "validation", "--precision", "int8"]
    )  # fmt: skip
    metrics = json.loads(capsys.readouterr().out)
    assert code == 0 and metrics["precision"] == "int8" and metrics["engine"] == "tflite-int8"
    assert metrics["brand_accuracy"] == pytest.approx(
        read_metadata(bundle).quantization["top1_int8"]
    )

    from beam_jobs.job import JobConfig, run_job

    output = tmp_path / "out.csv"
    run_job(
        JobConfig(input=str(photos), model=str(bundle), output=str(output), num_shards=1,
                  top_k=5, precision="int8", progress_interval=0),
        ["--runner", "DirectRunner"],
        quiet=True,
    )  # fmt: skip
    with open(output, newline="") as handle:
        beam_rows = {row["path"]: row for row in csv.DictReader(handle)}
    for row in fast:  # the same int8 model on the same inputs: the same answers
        beam = beam_rows[row["path"]]
        assert beam["label"] == row["label"] and beam["box"] == row["box"]
        np.testing.assert_allclose(
            [float(s) for s in beam["top_scores"].split(";")],
            [float(s) for s in row["top_scores"].split(";")],
            atol=1e-5,
        )


def test_quantize_rerun_replaces_the_int8_model_and_keeps_the_bundle_whole(
    quantized, synthetic_data_dir, capsys
):
    bundle, figures = quantized
    metadata = (bundle / METADATA_FILE).read_text()
    assert main(["quantize", str(bundle), "--data-dir", str(synthetic_data_dir)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["bytes"] == figures["bytes"]  # same model, same calibration
    assert read_metadata(bundle).class_names == json.loads(metadata)["class_names"]
    assert load_bundle(bundle).model is not None


def test_beam_fingerprint_follows_the_precision_and_the_int8_model(quantized, tmp_path):
    """``--previous`` must not carry float32 rows into an int8 run (or back), nor rows of
    an int8 model that ``quantize`` has since replaced."""
    import shutil

    from beam_jobs.job import JobConfig, fingerprint_of

    bundle, _ = quantized
    copy = tmp_path / "copy"
    shutil.copytree(bundle, copy)
    metadata = read_metadata(copy)

    def fingerprint(precision: str) -> str:
        config = JobConfig(input="x", model=str(copy), output="o.csv", precision=precision)
        return fingerprint_of(config, metadata)

    before = {p: fingerprint(p) for p in ("off", "int8", "auto", "bfloat16")}
    assert len(set(before.values())) == 4
    (copy / engines.INT8_FILE).write_bytes((copy / engines.INT8_FILE).read_bytes() + b"\0")
    assert fingerprint("int8") != before["int8"]
    assert fingerprint("off") == before["off"] and fingerprint("bfloat16") == before["bfloat16"]
    # auto hashes the int8 model only where the bundle may use it (it kept accuracy)
    assert (fingerprint("auto") != before["auto"]) == engines.int8_kept_accuracy(metadata)
    assert engines.may_use_int8("auto", metadata) == engines.int8_kept_accuracy(metadata)
    assert engines.may_use_int8("int8", metadata) and not engines.may_use_int8("off", metadata)
