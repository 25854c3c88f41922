"""Training end to end on the synthetic dataset (tiny CNN, 32 px), resume, GPU switches."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import keras
import numpy as np
import pandas as pd
import pytest
from training_support import Interrupt, Record, tiny_config

from logo_batch.cli import main
from logo_batch.data import pipeline as data
from logo_batch.evaluation import evaluate
from logo_batch.inference.bundle import load_bundle, read_metadata
from logo_batch.inference.predict import predict_files
from logo_batch.training import train

CHANCE = 1 / 27
REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def trained(synthetic_data_dir, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    return train(tiny_config(synthetic_data_dir, out, export_serving=True))


def test_training_learns_and_writes_the_run_folder(trained):
    out = trained.output_dir
    assert trained.metrics["test"]["accuracy"] > 5 * CHANCE
    history = pd.read_csv(out / "history.csv")
    assert history["epoch"].tolist() == list(range(10))
    assert history["phase"].tolist() == ["head"] * 8 + ["fine_tune"] * 2
    assert {"loss", "accuracy", "val_loss", "val_accuracy", "seconds"} <= set(history)
    for name in ("training_curves.png", "test_confusion_matrix.png", "test_per_class.csv"):
        assert (out / name).stat().st_size > 0, name
    assert any((out / "logs").rglob("events.out.tfevents*"))
    assert json.loads((out / "test_metrics.json").read_text()) == trained.metrics["test"]
    assert len(pd.read_csv(out / "test_per_class.csv")) == 27


def test_bundle_metadata_and_round_trip(trained, synthetic_data_dir):
    bundle = load_bundle(trained.bundle_dir)
    meta = bundle.metadata
    assert len(meta.class_names) == 27 and "none" not in meta.class_names
    assert (meta.image_size, meta.backbone, meta.weights, meta.head) == (
        32,
        "tiny_cnn",
        "none",
        "default",
    )
    assert meta.dataset["name"] == "flickr_logos27" and meta.dataset["config"] == "crops"
    assert meta.dataset["version"]
    assert 0.0 < meta.rejection_threshold <= 1.0
    assert meta.metrics["test"] == trained.metrics["test"]
    assert meta.training["phases"] == {"head": 8, "fine_tune": 2}
    assert (trained.bundle_dir / "serving" / "saved_model.pb").is_file()
    # The loaded bundle reproduces the metrics computed in memory at training time.
    again = evaluate.evaluate_bundle(trained.bundle_dir, synthetic_data_dir, config="crops")
    assert again["accuracy"] == trained.metrics["test"]["accuracy"]
    # ... and predict's file path gives the same scores as the tf.data path.
    test = data.load_split(synthetic_data_dir, "crops", "test")
    jpegs = [b.numpy() for b, _ in test.records.take(4)]
    paths = []
    for i, jpeg in enumerate(jpegs):
        paths.append(trained.output_dir / f"sample{i}.jpg")
        paths[-1].write_bytes(jpeg)
    scores, _ = evaluate.predict_dataset(bundle.model, test.records.take(4), 32)
    rows = predict_files(bundle, paths, top_k=1)
    assert [r.top_labels[0] for r in rows] == [meta.class_names[i] for i in scores.argmax(1)]
    assert np.allclose([r.score for r in rows], scores.max(1), atol=1e-6)


def test_evaluate_query_set_reports_rejection(trained, synthetic_data_dir, capsys, tmp_path):
    code = main(
        [
            "evaluate",
            str(trained.bundle_dir),
            "--data-dir",
            str(synthetic_data_dir),
            "--config",
            "images",
            "--split",
            "test",
            "--output-dir",
            str(tmp_path),
            "--min-score",  # single mode (a crops bundle): no threshold unless asked
            "bundle",
        ]
    )
    metrics = json.loads(capsys.readouterr().out)
    labels = data.split_labels(data.load_split(synthetic_data_dir, "images", "test").records)
    assert code == 0
    assert metrics["num_none"] == int((labels == 27).sum()) > 0
    assert metrics["num_logo"] == int((labels < 27).sum())
    assert metrics["threshold"] == read_metadata(trained.bundle_dir).rejection_threshold
    assert 0.0 <= metrics["none_rejected"] <= 1.0 and "open_set_accuracy" in metrics
    assert (tmp_path / "test_metrics.json").is_file()


def test_interrupted_run_resumes_in_both_phases(synthetic_data_dir, tmp_path):
    config = tiny_config(
        synthetic_data_dir, tmp_path, epochs=3, fine_tune_epochs=2, steps_per_epoch=2
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Interrupt(at_epoch=1)])  # in the head phase
    record = Record()
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[record, Interrupt(at_epoch=3)])  # in fine-tuning
    assert record.epochs == [2, 3]  # resumed after epoch 1
    record = Record()
    result = train(config, callbacks=[record])
    assert record.epochs == [4]  # resumed after epoch 3
    history = pd.read_csv(tmp_path / "history.csv")
    assert history["epoch"].tolist() == [0, 1, 2, 3, 4]
    assert history["phase"].tolist() == ["head"] * 3 + ["fine_tune"] * 2
    assert result.phases == {"head": 3, "fine_tune": 2}
    assert (result.bundle_dir / "model.keras").is_file()


def test_resume_refuses_a_different_model(synthetic_data_dir, tmp_path):
    config = tiny_config(
        synthetic_data_dir, tmp_path, epochs=1, fine_tune_epochs=0, steps_per_epoch=1
    )
    with pytest.raises(KeyboardInterrupt):
        train(config, callbacks=[Interrupt(at_epoch=0)])
    with pytest.raises(ValueError, match="image_size"):
        train(tiny_config(synthetic_data_dir, tmp_path, image_size=48))


@pytest.mark.parametrize(
    ("switch", "expected"),
    [
        ({"mixed_precision": "on"}, {"policy": "mixed_float16", "optimizer": "LossScaleOptimizer"}),
        ({"xla": "on"}, {"jit_compile": True, "policy": "float32"}),
    ],
)
def test_mixed_precision_and_xla_runs(synthetic_data_dir, tmp_path, switch, expected):
    record = Record()
    config = tiny_config(
        synthetic_data_dir, tmp_path, epochs=2, fine_tune_epochs=0, steps_per_epoch=2, **switch
    )
    result = train(config, callbacks=[record])
    assert expected.items() <= record.seen.items()
    assert keras.mixed_precision.global_policy().name == "float32"  # restored
    assert np.isfinite(result.history["loss"]).all()
    bundle = load_bundle(result.bundle_dir)
    assert bundle.model.dtype_policy.name == "float32"  # the bundle is for CPUs too


def test_mirrored_strategy_on_two_logical_cpus(synthetic_data_dir, tmp_path):
    """MirroredStrategy over 2 CPU devices (set before TF initialises: a subprocess).

    Splits of k*B+1 examples (a last partial batch of one example) on both head-phase
    paths: images through the model (weights none, augmented in the training step on
    each replica), and cached features (weights file, fine-tuning augmented in tf.data).
    """
    from logo_batch.training import models

    base_weights = tmp_path / "tiny_base.weights.h5"
    models.build_backbone("tiny_cnn", 32, "none").save_weights(str(base_weights))
    script = textwrap.dedent(
        """
        import sys
        import tensorflow as tf
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * 2
        )
        from logo_batch.cli import main
        args = sys.argv[1:]
        split = args.index("--")
        sys.exit(main(args[:split]) or main(args[split + 1 :]))
        """
    )
    common = [
        "train", "--data-dir", str(synthetic_data_dir),
        "--backbone", "tiny_cnn", "--image-size", "32", "--batch-size", "16",
        "--train-split", "train[:33]", "--validation-split", "validation[:17]",
        "--epochs", "2", "--fine-tune-epochs", "1", "--steps-per-epoch", "3",
        "--strategy", "mirrored", "--no-serving-export", "--mixed-precision", "off",
    ]  # fmt: skip
    runs = {
        "images": ["--weights", "none", "--augment-on", "device"],  # fused: the default
        "features": [
            "--weights",
            str(base_weights),
            "--augmentation",
            "layers",
            "--augment-on",
            "cpu",
        ],
    }
    args = [*common, "--output-dir", str(tmp_path / "images"), *runs["images"], "--"]
    args += [*common, "--output-dir", str(tmp_path / "features"), *runs["features"]]
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "PYTHONPATH": str(REPO)}
    proc = subprocess.run(
        [sys.executable, "-c", script, *args], env=env, capture_output=True, text=True, timeout=600
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    for run in runs:
        training = read_metadata(tmp_path / run / "bundle").training
        assert training["strategy"] == "MirroredStrategy" and training["replicas"] == 2
        assert training["augment_on"] == runs[run][-1]
        assert training["augmentation"] == ("layers" if "layers" in runs[run] else "fused")
        history = pd.read_csv(tmp_path / run / "history.csv")
        assert len(history) == 3 and np.isfinite(history["val_loss"]).all()


@pytest.mark.real_data
@pytest.mark.slow
def test_real_crops_short_run_learns(real_archive, tmp_path):
    import tfds_flickr27

    tfds_flickr27.build_dataset("crops", tmp_path / "tfds", manual_dir=real_archive.parent)
    config = tiny_config(
        tmp_path / "tfds", tmp_path / "run", image_size=64, epochs=6, fine_tune_epochs=0
    )
    result = train(config)
    assert result.metrics["test"]["accuracy"] > 3 * CHANCE
