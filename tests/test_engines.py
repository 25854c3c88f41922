"""Engines: the float32 TensorFlow Lite engine checked against the Keras model, chosen by
``--precision auto`` without loading Keras, and named by the Beam job's summary and
manifest (with the bundle's content hash)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from beam_support import CLASSES, IMAGE_SIZE, IN_PROCESS, make_bundle
from PIL import Image

from logo_batch.evaluation.tflite_export import compare_engine, float32_engine
from logo_batch.inference import bundle as bundle_lib
from logo_batch.inference import engines


@pytest.fixture(autouse=True)
def no_gpu(monkeypatch):
    monkeypatch.setattr(engines, "has_gpu", lambda: False)


def _inputs(count: int, seed: int = 3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(0, 255, (count, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)


def test_the_float32_engine_gives_the_keras_scores_within_the_tolerance(tmp_path):
    model = bundle_lib.load_keras_model(make_bundle(tmp_path / "b"))
    content, figures = float32_engine(model, _inputs(32))
    assert figures["kept_scores"] and figures["label_agreement"] == 1.0
    assert 0 <= figures["max_score_difference"] <= engines.FLOAT32_TOLERANCE
    fresh = _inputs(8, seed=9)  # inputs the check never saw
    got = engines.predict_scores(engines.TfliteModel(content), fresh)
    np.testing.assert_allclose(got, model(fresh).numpy(), atol=engines.FLOAT32_TOLERANCE)


@pytest.mark.parametrize("invoke_batch", [1, 3, 64])
def test_a_batch_is_invoked_in_chunks_with_the_same_scores(tmp_path, invoke_batch):
    model = bundle_lib.load_keras_model(make_bundle(tmp_path / "b"))
    content, _ = float32_engine(model, _inputs(8))
    whole = engines.TfliteModel(content, num_threads=1, invoke_batch=64)
    chunked = engines.TfliteModel(content, num_threads=1, invoke_batch=invoke_batch)
    images = _inputs(10, seed=4)
    expected = whole(images)
    assert expected.shape == (10, len(CLASSES))
    np.testing.assert_allclose(chunked(images), expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(chunked(images[:1]), expected[:1], rtol=0, atol=1e-6)
    assert chunked(images[:0]).shape == (0, expected.shape[1])
    with pytest.raises(ValueError, match="invoke_batch"):
        engines.TfliteModel(content, invoke_batch=0)


def test_the_check_refuses_an_engine_that_gives_other_scores(tmp_path):
    model = bundle_lib.load_keras_model(make_bundle(tmp_path / "a", seed=0))
    other = bundle_lib.load_keras_model(make_bundle(tmp_path / "b", seed=5))
    figures = compare_engine(model, other, _inputs(16))
    assert figures["max_score_difference"] > engines.FLOAT32_TOLERANCE


def test_auto_runs_model_tflite_without_loading_the_keras_model(tmp_path, monkeypatch):
    path = make_bundle(tmp_path / "b", tflite=True)
    keras_model = bundle_lib.load_keras_model(path)

    def refuse(_):
        raise AssertionError("the Keras model must not be loaded for a TensorFlow Lite engine")

    monkeypatch.setattr(engines, "load_keras_model", refuse)
    bundle, engine = engines.open_for_inference(path, "auto")
    assert engine == "tflite-float32" and isinstance(bundle.model, engines.TfliteModel)
    images = _inputs(4)
    np.testing.assert_allclose(
        engines.predict_scores(bundle.model, images),
        keras_model(images).numpy(),
        atol=engines.FLOAT32_TOLERANCE,
    )


def test_a_bundle_without_model_tflite_runs_the_tensorflow_graph(tmp_path):
    bundle, engine = engines.open_for_inference(make_bundle(tmp_path / "b"), "auto")
    assert engine == "tf-float32" and isinstance(bundle.model, keras.Model)


def test_only_the_tf_engines_need_tensorflow():
    needing = [engine for engine in engines.ENGINES if engines.needs_tensorflow(engine)]
    assert needing == [engines.TF_FLOAT32, engines.TF_BFLOAT16]


def test_a_garbage_model_tflite_is_named_in_the_error(tmp_path):
    path = make_bundle(tmp_path / "b", tflite=True)
    (path / engines.TFLITE_FILE).write_bytes(b"not a flatbuffer")
    with pytest.raises(ValueError, match="model.tflite"):
        engines.open_for_inference(path, "auto")


def test_the_beam_job_names_its_engine_and_writes_a_manifest(tmp_path):
    from beam_jobs.fingerprint import bundle_digest
    from beam_jobs.job import JobConfig, run_job
    from beam_jobs.run_manifest import run_manifest_path

    path = make_bundle(tmp_path / "bundle", tflite=True)
    photos = tmp_path / "photos"
    photos.mkdir()
    for index in range(3):
        Image.fromarray(np.full((30, 40, 3), 60 * index, np.uint8)).save(photos / f"{index}.png")
    output = tmp_path / "out" / "results.csv"
    config = JobConfig(input=str(photos), model=str(path), output=str(output), progress_interval=0)
    summary = run_job(config, IN_PROCESS, quiet=True)
    assert summary.engines == {"tflite-float32": 3}
    assert "engine tflite-float32 (3 files)" in summary.line()
    manifest = json.loads(open(run_manifest_path(str(output)), encoding="utf-8").read())
    assert manifest["model"]["sha256"] == bundle_digest(str(path))
    assert manifest["engines"] == {"tflite-float32": 3}
    assert manifest["counts"]["matched"] == 3 and manifest["outputs"] == [str(output)]
    assert manifest["settings"]["precision"] == "auto"
    # Another model: another content hash.
    (path / engines.TFLITE_FILE).unlink()
    assert bundle_digest(str(path)) != manifest["model"]["sha256"]


def test_predict_on_the_tflite_engine_never_imports_tensorflow(tmp_path):
    """A fresh process (as each Beam worker is) looks for a GPU (none: no driver),
    decodes, resizes (Pillow) and runs model.tflite (LiteRT) in both modes: TensorFlow,
    9 s and 680 MB to import here, stays out of it, and TensorFlow Datasets too (0.3 s:
    the dataset package registers its builder on import)."""
    from logo_batch.inference import cpu

    if not sys.platform.startswith("linux") or any(map(os.path.exists, cpu.GPU_DEVICE_PATHS)):
        pytest.skip("a GPU driver is here (or not Linux): has_gpu asks TensorFlow")
    path = make_bundle(tmp_path / "b", tflite=True)
    photo = tmp_path / "p.jpg"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (90, 120, 3), np.uint8)).save(photo)
    script = (
        "import sys\n"
        "from beam_jobs import model, runner\n"
        "from logo_batch.inference import engines, predict\n"
        f"bundle, engine = engines.open_for_inference({str(path)!r}, 'auto')\n"
        "for mode in ('single', 'whole'):\n"
        f"    (row,) = predict.predict_files(bundle, [{str(photo)!r}], mode=mode)\n"
        "    print(engine, mode, row.error or 'ok', 'tensorflow' in sys.modules)\n"
        "print('tensorflow_datasets' in sys.modules, 'tfds_flickr27' in sys.modules)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [
        "tflite-float32", "single", "ok", "False", "tflite-float32", "whole", "ok", "False",
        "False", "False",
    ], done.stdout  # fmt: skip
