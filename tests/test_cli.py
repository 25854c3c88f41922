"""The command line: arguments checked up front, quiet start-up."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from logo_batch.cli import main

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (["--epochs", "-1"], "--epochs must be >= 0, not -1"),
        (["--fine-tune-epochs", "-2"], "--fine-tune-epochs must be >= 0, not -2"),
        (
            ["--epochs", "0", "--fine-tune-epochs", "0"],
            "--epochs and --fine-tune-epochs are both 0: nothing to train",
        ),
        (["--image-size", "0"], "--image-size must be at least 32 pixels, not 0"),
        (["--learning-rate", "0"], "--learning-rate must be > 0"),
        (["--dropout", "1.5"], "--dropout must be in [0, 1)"),
        (["--weights", "missing.weights.h5"], "--weights missing.weights.h5: no such file"),
    ],
)
def test_train_rejects_bad_arguments_before_doing_anything(tmp_path, capsys, bad, message):
    out = tmp_path / "run"
    code = main(["train", "--data-dir", str(tmp_path / "data"), "--output-dir", str(out), *bad])
    err = capsys.readouterr().err
    assert code == 1
    assert f"logo-batch train: error: {message}" in err
    assert "Traceback" not in err
    assert not out.exists()  # nothing was started


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
