"""The demo (`make demo`) end to end, twice in a row, on small settings."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from logo_batch.cli import demo
from tfds_flickr27.archive import scan


@pytest.mark.slow
def test_demo_runs_end_to_end_and_again(
    synthetic_archive: Path, tmp_path: Path, capsys: pytest.CaptureFixture
):
    out = tmp_path / "demo"
    args = [
        "--output-dir", str(out), "--archive", str(synthetic_archive), "--weights", "none",
        "--image-size", "32", "--epochs", "1", "--fine-tune-epochs", "0",
    ]  # fmt: skip
    query = scan(synthetic_archive).query
    model_files: dict[str, int] = {}
    for attempt in range(2):  # the second run reuses the TFRecords and the trained run
        assert demo.main(args) == 0
        printed = capsys.readouterr().out
        assert f"data: the FlickrLogos-27 archive given at {synthetic_archive}" in printed
        assert "weights: none" in printed
        assert "shortened for time: 32 px, 1 head + 0 fine-tune epochs" in printed
        (run,) = (out / "runs").iterdir()
        csv = out / "predictions.csv"
        bundle_times = {p.name: p.stat().st_mtime_ns for p in (run / "bundle").iterdir()}
        if attempt:
            assert "this run finished earlier" in printed
            assert bundle_times == model_files  # the first run's model is kept as it was
        model_files = bundle_times
        for promised in (csv, run / "bundle", run / "training_curves.png"):
            assert str(promised) in printed and promised.exists()
        assert "test accuracy (crops test split):" in printed
        rows = pd.read_csv(csv, keep_default_na=False)
        assert sorted(Path(p).name for p in rows.path) == sorted(query)
        assert (rows.error == "").all()
        assert rows.path.iloc[0] in printed  # the first CSV rows are shown
        report = out / "report.html"
        assert f"report of this run: {report} (open it in a browser)" in printed
        assert f"{len(rows)} rows:" in report.read_text().replace(",", "")
        metrics = json.loads((run / "metrics.json").read_text())
        assert f"{metrics['test']['accuracy']:.3f}" in printed
    assert len(list((out / "tfds").iterdir())) == 1  # built once, reused
