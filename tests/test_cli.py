"""The command line: arguments checked up front, quiet start-up."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from logo_batch.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            ["--epochs", "0", "--fine-tune-epochs", "0"],
            "--epochs and --fine-tune-epochs are both 0: nothing to train",
        ),
        (["--weights", "missing.weights.h5"], "--weights missing.weights.h5: no such file"),
    ],
)
def test_train_rejects_bad_arguments_before_doing_anything(tmp_path, capsys, bad, message):
    """(Numbers out of range are usage errors while parsing: tests/test_hostile_input.py.)"""
    out = tmp_path / "run"
    code = main(["train", "--data-dir", str(tmp_path / "data"), "--output-dir", str(out), *bad])
    err = capsys.readouterr().err
    assert code == 1
    assert f"logo-batch train: error: {message}" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing was started


def test_train_config_checks_numbers_as_the_command_line_does():
    from logo_batch.training import TrainConfig

    for field, value, message in [
        ("epochs", -1, "--epochs must be a whole number >= 0, not '-1'"),
        ("image_size", 0, "--image-size must be a whole number >= 32, not '0'"),
        ("learning_rate", 0.0, "--learning-rate must be a number > 0, not '0.0'"),
        ("dropout", 1.0, "--dropout must be a number in [0, 1), not '1.0'"),
        ("fine_tune_fraction", float("nan"), "--fine-tune-fraction must be a number in (0, 1]"),
    ]:
        with pytest.raises(ValueError, match=re.escape(message)):
            TrainConfig(data_dir="d", output_dir="o", **{field: value}).validate()


def test_help_prints_no_tensorflow_start_up_noise():
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TF_CPP", "LOGO_BATCH"))}
    env["PYTHONPATH"] = str(REPO)
    proc = subprocess.run(
        [sys.executable, "-m", "logo_batch.cli", "train", "--help"],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0
    assert proc.stdout.startswith("usage: logo-batch train")
    assert proc.stderr == ""


def test_a_command_whose_extra_is_missing_says_what_to_install(monkeypatch, capsys):
    import importlib

    real_import = importlib.import_module

    def without_beam(name, *args):
        if name.startswith("beam_jobs"):
            raise ModuleNotFoundError("No module named 'apache_beam'", name="apache_beam")
        return real_import(name, *args)

    monkeypatch.setattr(importlib, "import_module", without_beam)
    assert main(["classify", "--input", "x", "--model", "m", "--output", "o.csv"]) == 2
    assert "pip install 'logo-batch[beam]'" in capsys.readouterr().err
