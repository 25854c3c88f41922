"""The photo recipe is `logo-batch train`'s default; `--crops-only` is one flag away; the
steps of an epoch are derived, not typed."""

from __future__ import annotations

import argparse

from logo_batch.arguments import matching_args
from logo_batch.cli import train as train_cli
from logo_batch.training import TrainConfig
from logo_batch.training.datasets import steps_per_epoch


def _config(argv: list[str]) -> TrainConfig:
    parser = argparse.ArgumentParser()
    train_cli.configure_parser(parser)
    args = parser.parse_args(["--data-dir", "d", "--output-dir", "o", *argv])
    values = matching_args(TrainConfig, args)
    if args.crops_only:
        values.update(train_cli.CROPS_ONLY)
    return TrainConfig(**values)


def test_train_with_no_recipe_flags_is_the_photo_recipe():
    config = _config([])
    assert (config.background, config.context) == (2, 2)
    assert config.steps_per_epoch is None  # derived


def test_crops_only_is_one_flag_away():
    config = _config(["--crops-only"])
    assert (config.background, config.context, config.paste, config.grid_windows) == (
        0, 0, 0, False,
    )  # fmt: skip


def test_steps_follow_the_crops_and_background_windows():
    # FlickrLogos-27: 890 crops + 1,260 background windows, 1,780 context windows beside
    assert steps_per_epoch(890 + 1260, 890 + 1260 + 1780, 32) == 67
    # Crops alone: one pass over them, the last batch partial.
    assert steps_per_epoch(890, 890, 32) == 28
    assert steps_per_epoch(5, 9, 32) == 1  # never 0
