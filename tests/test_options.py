"""One vocabulary: the options ``predict``, ``evaluate``, ``classify`` and the Beam module
share read the same in every ``--help`` and take both spellings. (A bad value is a usage
error, exit 2, naming the option, before anything runs: tests/test_hostile_input.py.)"""

from __future__ import annotations

import argparse
import re

from beam_jobs import classify_images
from logo_batch import cli
from logo_batch.options import BATCH_SIZE, MAX_PIXELS, MIN_SCORE, MODE, PRECISION, TOP_K

SHARED = {  # option: the commands that have it
    "--min-score": ("predict", "evaluate", "classify", "beam"),
    "--mode": ("predict", "evaluate", "classify", "beam"),
    "--batch-size": ("predict", "evaluate", "classify", "beam"),
    "--precision": ("predict", "evaluate", "classify", "beam"),
    "--top-k": ("predict", "classify", "beam"),
    "--max-pixels": ("predict", "classify", "beam"),
    "--max-bytes": ("predict", "classify", "beam"),
}
# Enough for argparse to reach the option under test (nothing runs: parsing fails first).
ARGS = {
    "predict": ["predict", "bundle", "a.jpg"],
    "evaluate": ["evaluate", "bundle", "--data-dir", "data"],
    "classify": ["classify", "--input", "in", "--model", "bundle", "--output", "o.csv"],
    "beam": ["--input", "in", "--model", "bundle", "--output", "o.csv"],
    "train": ["train", "--data-dir", "data", "--output-dir", "run"],
}


def _run(command: str, argv: list[str]) -> int:
    """Exit code of ``logo-batch COMMAND argv`` (``beam``: ``python -m
    beam_jobs.classify_images argv``, its ``main``)."""
    try:
        if command == "beam":
            return classify_images.main(argv)
        return cli.main(argv)
    except SystemExit as stop:
        return stop.code


def _help(command: str, capsys) -> str:
    argv = ["--help"] if command == "beam" else [command, "--help"]
    assert _run(command, argv) == 0
    return capsys.readouterr().out


def option_rows(help_text: str) -> dict[str, str]:
    """Each option's row of a ``--help`` (its invocation, choices and help text, the
    default among them), whitespace made single: ``{"--top-k": "--top-k K labels ..."}``."""
    rows: dict[str, list[str]] = {}
    current = None
    for line in help_text.splitlines():
        start = re.match(r"  (-\S+)", line)
        if start:
            current = start.group(1).rstrip(",")
            rows[current] = [line]
        elif current and line.startswith("   "):
            rows[current].append(line)
        else:
            current = None
    return {name: " ".join(" ".join(lines).split()) for name, lines in rows.items()}


def test_shared_options_read_the_same_in_every_command(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")  # the same wrapping in every help
    rows = {command: option_rows(_help(command, capsys)) for command in ARGS if command != "train"}
    for option, commands in SHARED.items():
        seen = {command: rows[command].get(option) for command in commands}
        assert None not in seen.values(), f"{option} missing: {seen}"
        assert len(set(seen.values())) == 1, f"{option} differs between commands: {seen}"
        absent = [c for c in rows if c not in commands and option in rows[c]]
        assert not absent, f"{option} is in {absent} too: add it to SHARED"
    # The table holds name, choices and default, in the hyphen spelling only.
    assert rows["predict"]["--mode"].startswith("--mode {auto,whole,single} ")
    assert "(default 5)" in rows["predict"]["--top-k"]
    assert "(default 32)" in rows["beam"]["--batch-size"]
    assert not [name for row in rows.values() for name in row if "_" in name]


def _parse(option, argv: list[str], aliases=()) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="test")
    option.add_to(parser, aliases=aliases)
    return parser.parse_args(argv)


def test_values_as_parsed():
    assert _parse(MIN_SCORE, ["--min-score", "0.25"]).min_score == 0.25
    assert _parse(MIN_SCORE, ["--min_score", "BUNDLE"]).min_score == "bundle"
    assert _parse(MIN_SCORE, []).min_score is None
    assert _parse(MIN_SCORE, ["--threshold", "1"], aliases=["--threshold"]).min_score == 1.0
    assert _parse(TOP_K, []).top_k == 5 and _parse(TOP_K, ["--top_k=2"]).top_k == 2
    assert _parse(BATCH_SIZE, []).batch_size == 32
    assert _parse(MODE, []).mode == "auto" and _parse(PRECISION, []).precision == "auto"
    assert _parse(MAX_PIXELS, ["--max_pixels", "7"]).max_pixels == 7


def test_the_beam_job_reads_min_score_bundle_as_predict_does(tmp_path):
    """``--min-score bundle`` is the same run as the number it stands for (the rows'
    fingerprint, which ``--previous`` matches on, says so)."""
    from beam_support import make_bundle

    from beam_jobs.job import JobConfig, fingerprint_of
    from logo_batch.inference.bundle import read_metadata

    bundle = make_bundle(tmp_path / "bundle", rejection_threshold=0.3)
    metadata = read_metadata(bundle)
    threshold = metadata.rejection_threshold

    def fingerprint(min_score, mode="single"):
        config = JobConfig(str(tmp_path), str(bundle), str(tmp_path / "o.csv"), mode=mode)
        config.min_score = min_score
        return fingerprint_of(config, metadata)

    assert fingerprint("bundle") == fingerprint(threshold) != fingerprint(None)
    assert fingerprint("bundle", "whole") == fingerprint(None, "whole")
