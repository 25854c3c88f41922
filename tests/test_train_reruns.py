"""Reruns never destroy a finished run; a killed run finishes with its trained weights."""

from __future__ import annotations

import hashlib
from pathlib import Path

import keras
import numpy as np
import pytest
from training_support import Record, tiny_config

from logo_batch.inference.bundle import load_bundle
from logo_batch.training import TrainConfig, export, models, train


def _config(data_dir, output_dir, **overrides) -> TrainConfig:
    values = dict(epochs=2, fine_tune_epochs=1, steps_per_epoch=2, batch_size=16)
    return tiny_config(data_dir, output_dir, **{**values, **overrides})


def _snapshot(run: Path) -> dict[str, tuple[int, str]]:
    """(mtime_ns, sha256) of every output file of a finished run."""
    files = [run / "metrics.json", *run.glob("test_*"), *(run / "bundle").rglob("*")]
    return {
        str(path.relative_to(run)): (
            path.stat().st_mtime_ns,
            hashlib.sha256(path.read_bytes()).hexdigest(),
        )
        for path in files
        if path.is_file()
    }


def _weights_equal(model: keras.Model, weights_file: Path, reference: keras.Model) -> bool:
    reference.load_weights(str(weights_file))
    return all(
        np.array_equal(a, b)
        for a, b in zip(model.get_weights(), reference.get_weights(), strict=True)
    )


def test_rerun_of_a_finished_run_changes_nothing(synthetic_data_dir, tmp_path):
    config = _config(synthetic_data_dir, tmp_path)
    first = train(config)
    before = _snapshot(tmp_path)
    assert "bundle/model.keras" in before and "metrics.json" in before
    epochs = Record()
    again = train(config, callbacks=[epochs])
    assert epochs.epochs == []  # nothing trained again
    assert again.metrics == first.metrics
    assert again.bundle_dir == first.bundle_dir
    assert _snapshot(tmp_path) == before  # not one output file rewritten


@pytest.mark.parametrize(
    ("head", "phases", "last"),
    [
        ("default", {"epochs": 2, "fine_tune_epochs": 1}, "fine_tune"),
        ("seed", {"fine_tune_epochs": None}, "head"),  # the seed recipe: one phase
    ],
)
def test_run_killed_before_its_export_finishes_with_its_trained_weights(
    synthetic_data_dir, tmp_path, monkeypatch, head, phases, last
):
    config = _config(synthetic_data_dir, tmp_path, head=head, **phases)
    real_save = export.save_bundle

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing the bundle")

    monkeypatch.setattr(export, "save_bundle", killed)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    assert not (tmp_path / "bundle").exists()
    monkeypatch.setattr(export, "save_bundle", real_save)
    epochs = Record()
    result = train(config, callbacks=[epochs])
    assert epochs.epochs == []  # every phase had finished: none is run again
    assert list(result.phases)[-1] == last
    bundle = load_bundle(result.bundle_dir)
    end_weights = tmp_path / "checkpoints" / f"{last}_end.weights.h5"
    reference = keras.models.clone_model(bundle.model)
    assert _weights_equal(bundle.model, end_weights, reference)


def test_run_killed_between_phases_continues_from_the_first_phase(
    synthetic_data_dir, tmp_path, monkeypatch
):
    """Killed right after the head phase: fine-tuning starts from the head's weights."""
    config = _config(synthetic_data_dir, tmp_path, epochs=2, fine_tune_epochs=1)

    def killed(model, fraction):
        raise KeyboardInterrupt("killed between the phases")

    monkeypatch.setattr(models, "set_fine_tune", killed)
    with pytest.raises(KeyboardInterrupt):
        train(config)
    monkeypatch.undo()
    head_end = tmp_path / "checkpoints" / "head_end.weights.h5"
    assert head_end.is_file()
    loaded: list[str] = []

    class Spy(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            reference = keras.models.clone_model(self.model)
            loaded.append(str(_weights_equal(self.model, head_end, reference)))

    result = train(config, callbacks=[Spy()])
    assert loaded == ["True"]  # fine-tuning began from the head phase's final weights
    assert result.phases == {"head": 2, "fine_tune": 1}
