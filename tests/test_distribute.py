"""``distribute``: this process's role from ``TF_CONFIG``; the precision chosen from
the machine (GPU, the CPU's bfloat16 units), for training and for inference."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import keras
import numpy as np
import pytest
from PIL import Image

from logo_batch.inference import cpu as cpu_lib
from logo_batch.inference.cpu import CpuFeatures, parse_cpu_flags
from logo_batch.inference.engines import low_precision_model
from logo_batch.training import distribute
from logo_batch.training.distribute import TaskInfo, resolve_precision, task_info


def _set(monkeypatch: pytest.MonkeyPatch, cluster=None, task=None) -> None:
    config = {}
    if cluster is not None:
        config["cluster"] = cluster
    if task is not None:
        config["task"] = task
    monkeypatch.setenv("TF_CONFIG", json.dumps(config))


def test_without_tf_config_a_single_chief(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    info = task_info()
    assert info == TaskInfo(None, 0, 1) and info.is_chief and info.name == "chief"
    monkeypatch.setenv("TF_CONFIG", "")
    assert task_info() == TaskInfo(None, 0, 1)


def test_workers_only_worker_0_is_the_chief(monkeypatch: pytest.MonkeyPatch):
    cluster = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
    _set(monkeypatch, cluster, {"type": "worker", "index": 0})
    first = task_info()
    assert first == TaskInfo("worker", 0, 2, False) and first.is_chief
    _set(monkeypatch, cluster, {"type": "worker", "index": 1})
    second = task_info()
    assert second == TaskInfo("worker", 1, 2, False) and not second.is_chief
    assert second.name == "worker_1"


def test_a_chief_task_is_the_chief_and_counts_as_a_worker(monkeypatch: pytest.MonkeyPatch):
    cluster = {"chief": ["h:0"], "worker": ["h:1", "h:2"], "evaluator": ["h:3"], "ps": ["h:4"]}
    _set(monkeypatch, cluster, {"type": "chief", "index": 0})
    chief = task_info()
    assert chief == TaskInfo("chief", 0, 3, True) and chief.is_chief and chief.name == "chief_0"
    _set(monkeypatch, cluster, {"type": "worker", "index": 0})
    worker = task_info()
    assert worker == TaskInfo("worker", 0, 3, True) and not worker.is_chief


def test_partial_configs(monkeypatch: pytest.MonkeyPatch):
    _set(monkeypatch, {"worker": ["h:1", "h:2"]}, {"type": "worker"})  # no index: 0
    assert task_info() == TaskInfo("worker", 0, 2, False)
    _set(monkeypatch, {"worker": ["h:1", "h:2"]})  # no task: the chief
    assert task_info() == TaskInfo(None, 0, 2, False) and task_info().is_chief
    _set(monkeypatch, task={"type": "worker", "index": 3})  # no cluster: one worker
    assert task_info() == TaskInfo("worker", 3, 1, False)


def test_invalid_json_is_a_clear_error(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ValueError, match="TF_CONFIG is not valid JSON"):
        task_info()


# --- Precision: chosen at run time from the GPU and the CPU's flags ------------------

XEON_SPR = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz
flags\t\t: fpu sse2 avx avx2 avx512f avx512_vnni avx512_bf16 amx_bf16 amx_tile amx_int8
processor\t: 1
flags\t\t: fpu sse2
"""
EPYC_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC\nflags\t\t: fpu sse2 avx avx2 fma\n"
COOPER_LAKE = "flags\t\t: avx2 avx512f avx512_vnni avx512_bf16\n"
ARM = "processor\t: 0\nFeatures\t: fp asimd bf16 i8mm\n"


def _cpu(text: str, onednn: bool = True) -> CpuFeatures:
    return CpuFeatures(parse_cpu_flags(text), onednn)


def test_cpu_flags_of_the_first_processor():
    flags = parse_cpu_flags(XEON_SPR)
    assert {"amx_bf16", "avx512_bf16", "amx_int8"} <= flags and "fpu" in flags
    assert parse_cpu_flags(ARM) == {"fp", "asimd", "bf16", "i8mm"}
    assert parse_cpu_flags("") == frozenset() and parse_cpu_flags("model name: x") == frozenset()
    spr = _cpu(XEON_SPR)
    assert spr.bfloat16 == ("amx_bf16", "avx512_bf16") and spr.fast_bfloat16
    assert spr.int8 == ("amx_int8", "avx512_vnni")
    assert spr.describe() == "AVX-512; amx_bf16, avx512_bf16, amx_int8, avx512_vnni; oneDNN on"
    epyc = _cpu(EPYC_AVX2)
    assert epyc.bfloat16 == () and not epyc.fast_bfloat16
    assert epyc.describe() == "AVX2 + FMA, no AVX-512; no bfloat16 or int8 units; oneDNN on"
    assert _cpu(ARM).vectors == "NEON" and _cpu(COOPER_LAKE).vectors == "AVX-512"
    assert not _cpu(XEON_SPR, onednn=False).fast_bfloat16  # Eigen's bfloat16 is slow


@pytest.mark.parametrize(
    ("gpu", "cpuinfo", "onednn", "expected"),
    [
        (True, EPYC_AVX2, False, "mixed_float16"),
        (True, XEON_SPR, True, "mixed_float16"),  # a GPU trains: float16 there
        (False, XEON_SPR, True, "mixed_bfloat16"),
        (False, COOPER_LAKE, True, "float32"),  # AVX-512 BF16 without AMX: measured slower
        (False, XEON_SPR, False, "float32"),  # TF_ENABLE_ONEDNN_OPTS=0
        (False, EPYC_AVX2, True, "float32"),
        (False, ARM, True, "float32"),
        (False, "", False, "float32"),
    ],
)
def test_auto_precision(gpu, cpuinfo, onednn, expected):
    assert resolve_precision("auto", gpu=gpu, cpu=_cpu(cpuinfo, onednn)) == expected


@pytest.mark.parametrize("gpu", [True, False])
@pytest.mark.parametrize("cpuinfo", [XEON_SPR, EPYC_AVX2])
def test_explicit_precision_stays(gpu, cpuinfo):
    cpu = _cpu(cpuinfo)
    expected = {"on": "mixed_float16", "bfloat16": "mixed_bfloat16", "off": "float32"}
    for value, policy in expected.items():
        assert resolve_precision(value, gpu=gpu, cpu=cpu) == policy
    assert resolve_precision(True, gpu=gpu, cpu=cpu) == "mixed_float16"
    assert resolve_precision(False, gpu=gpu, cpu=cpu) == "float32"
    with pytest.raises(ValueError, match="mixed_precision must be one of"):
        resolve_precision("fp8", gpu=gpu, cpu=cpu)


def test_cpu_features_reads_proc_cpuinfo(monkeypatch, tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(XEON_SPR)
    monkeypatch.setattr(cpu_lib, "CPUINFO", str(cpuinfo))
    monkeypatch.setattr(cpu_lib, "onednn_enabled", lambda: True)
    assert cpu_lib.cpu_features().fast_bfloat16
    assert resolve_precision("auto", gpu=False) == "mixed_bfloat16"
    monkeypatch.setattr(cpu_lib, "CPUINFO", str(tmp_path / "absent"))  # e.g. macOS
    assert cpu_lib.cpu_features().flags == frozenset()
    assert resolve_precision("auto", gpu=False) == "float32"
    assert cpu_lib.cpu_features(EPYC_AVX2).flags == parse_cpu_flags(EPYC_AVX2)


def test_onednn_follows_tensorflow(tmp_path):
    """``TF_ENABLE_ONEDNN_OPTS=0`` turns oneDNN off on any build (TensorFlow reads
    the variable once per process: a subprocess)."""
    script = "from logo_batch.inference.cpu import onednn_enabled; print(onednn_enabled())"
    env = {**os.environ, "TF_ENABLE_ONEDNN_OPTS": "0", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "False"


def _tiny_classifier():
    from logo_batch.training import models

    keras.utils.set_random_seed(0)
    return models.build_model("tiny_cnn", 3, 32, "none")


def _compute_dtypes(model, prefix: str = "") -> dict[str, str]:
    """Every layer's compute dtype by name, nested models' layers included."""
    dtypes = {}
    for layer in model.layers:
        if isinstance(layer, keras.Model):
            dtypes.update(_compute_dtypes(layer, f"{prefix}{layer.name}/"))
        else:
            dtypes[prefix + layer.name] = layer.compute_dtype
    return dtypes


def test_low_precision_model_computes_in_bfloat16_with_float32_outputs():
    model = _tiny_classifier()
    assert low_precision_model(model, "float32") is model
    fast = low_precision_model(model, "mixed_bfloat16")
    dtypes = _compute_dtypes(fast)
    convs = [name for name in dtypes if name.startswith("backbone/conv2d")]
    assert len(convs) == 3 and {dtypes[name] for name in convs} == {"bfloat16"}
    assert fast.get_layer("predictions").compute_dtype == "float32"
    assert set(_compute_dtypes(model).values()) == {"float32"}  # the original is unchanged
    for mine, theirs in zip(fast.weights, model.weights, strict=True):
        assert mine.dtype == "float32"  # variables stay float32: the weights are the same
        np.testing.assert_array_equal(mine.numpy(), theirs.numpy())
    images = np.random.default_rng(0).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    want = model(images, training=False).numpy()
    got = fast(images, training=False)
    assert got.dtype == "float32"
    np.testing.assert_allclose(got.numpy().sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(got.numpy(), want, atol=0.02)  # bfloat16: 8 bits of mantissa


def test_predict_files_precision(tmp_path):
    from beam_support import make_bundle

    from logo_batch.inference.bundle import load_bundle
    from logo_batch.inference.engines import with_precision
    from logo_batch.inference.predict import predict_files

    bundle = load_bundle(make_bundle(tmp_path / "bundle"))
    # make_bundle writes no model.tflite: float32 is the TensorFlow graph, the bundle itself.
    assert with_precision(bundle, "off") == (bundle, "tf-float32")
    assert with_precision(bundle, "auto") == (bundle, "tf-float32")  # no int8 model in it
    fast, resolved = with_precision(bundle, "bfloat16")
    assert resolved == "tf-bfloat16"
    assert fast.metadata is bundle.metadata and fast.model is not bundle.model
    assert "bfloat16" in set(_compute_dtypes(fast.model).values())
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"img{i}.png")
        Image.fromarray(np.full((30, 40, 3), 70 * i + 10, np.uint8)).save(paths[-1])
    plain = predict_files(bundle, paths, top_k=3)
    mixed = predict_files(bundle, paths, top_k=3, precision="bfloat16")
    for a, b in zip(plain, mixed, strict=True):
        assert a.path == b.path and not a.error and not b.error
        scores_a = dict(zip(a.top_labels, a.top_scores, strict=True))
        scores_b = dict(zip(b.top_labels, b.top_scores, strict=True))
        for label, score in scores_a.items():
            assert scores_b[label] == pytest.approx(score, abs=0.02)


def test_auto_trains_in_bfloat16_on_a_cpu_with_amx(monkeypatch, synthetic_data_dir, tmp_path):
    """A tiny run with the detection patched to a Sapphire Rapids CPU: ``auto`` picks
    mixed_bfloat16 (no loss scaling); the steps run on this CPU (TensorFlow has
    bfloat16 kernels on any x86, slow without AMX); the policy is restored after; the
    bundle is float32 and records the policy."""
    from training_support import Record, tiny_config

    from logo_batch.inference.bundle import load_bundle
    from logo_batch.training import train

    monkeypatch.setattr(distribute, "has_gpu", lambda: False)
    monkeypatch.setattr(distribute, "cpu_features", lambda: _cpu(XEON_SPR))
    record = Record()
    config = tiny_config(
        synthetic_data_dir,
        tmp_path,
        epochs=1,
        fine_tune_epochs=1,
        steps_per_epoch=2,
        mixed_precision="auto",
    )
    result = train(config, callbacks=[record])
    assert record.seen["policy"] == "mixed_bfloat16"
    assert record.seen["optimizer"] != "LossScaleOptimizer"  # bfloat16 needs no scaling
    assert result.phases == {"head": 1, "fine_tune": 1}
    assert np.isfinite(result.history["loss"]).all()
    assert keras.mixed_precision.global_policy().name == "float32"
    bundle = load_bundle(result.bundle_dir)
    assert bundle.model.dtype_policy.name == "float32"
    assert set(_compute_dtypes(bundle.model).values()) == {"float32"}
    training = json.loads((result.bundle_dir / "metadata.json").read_text())["training"]
    assert training["mixed_precision"] == "mixed_bfloat16"
