"""``benchmarks.bench_devices``: the parts that decide what its figures mean (no timings)."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from benchmarks.bench_devices import accuracy, batches, tflite_flatbuffers
from benchmarks.gpu_cores import GPUS, cores_needed
from logo_batch.inference.engines import TfliteModel


@pytest.fixture(scope="module")
def tiny_and_lite():
    from logo_batch.training import models

    keras.utils.set_random_seed(0)
    model = models.build_model("tiny_cnn", 3, 32, "none")
    rng = np.random.default_rng(0)
    calibration = rng.uniform(0, 255, (8, 32, 32, 3)).astype("float32")
    return model, tflite_flatbuffers(model, calibration)


def test_tflite_models_score_like_the_keras_model(tiny_and_lite):
    model, lite = tiny_and_lite
    assert set(lite) == {"float32", "int8"}
    assert len(lite["int8"]) < len(lite["float32"])  # int8 weights
    images = np.random.default_rng(1).uniform(0, 255, (7, 32, 32, 3)).astype("float32")
    want = np.asarray(model(images, training=False))
    for name, atol in (("float32", 1e-5), ("int8", 0.05)):
        engine = TfliteModel(lite[name])  # the engine the bundle's int8 model runs on
        got = np.concatenate([engine(batch) for batch in batches(images, 5)])  # 5, then 2
        assert got.shape == (7, 3)
        np.testing.assert_allclose(got, want, atol=atol)


def test_accuracy_compares_label_names():
    scores = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    assert accuracy(scores, ["a", "b", "b"], ["a", "b"]) == pytest.approx(2 / 3)
    assert accuracy(scores, ["b", "a", "a"], ["b", "a"]) == pytest.approx(2 / 3)


def test_cores_per_gpu():
    assert cores_needed(1000.0, 50.0) == pytest.approx(20.0)
    names = [gpu.name for gpu in GPUS]
    assert len(set(names)) == len(names) and all(gpu.basis for gpu in GPUS)
    cited = {gpu.name: gpu.images_per_second for gpu in GPUS if gpu.cited}
    assert cited == {"RTX 3090": pytest.approx(2313.1), "A100, float32/TF32": 9126 / 8}
