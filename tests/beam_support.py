"""Shared pieces of the Beam job tests: a tiny model bundle, CSV reading, runner flags.

Not a test module itself: `test_beam_*`, `test_whole_photo` and `test_predict` import it.
"""

from __future__ import annotations

from pathlib import Path

import keras
import pandas as pd

from logo_batch.inference.bundle import BundleMetadata, save_bundle
from logo_batch.inference.layers import ScalePixels

IMAGE_SIZE = 24
CLASSES = ["adidas", "apple", "cocacola"]
# The in-process runner: no worker processes, fast to start.
IN_PROCESS = ["--direct_running_mode", "in_memory", "--direct_num_workers", "1"]


def make_bundle(
    path: Path,
    class_names: list[str] = CLASSES,
    *,
    seed: int = 0,
    tflite: bool = False,
    **metadata_fields,
) -> Path:
    """A tiny bundle (a conv layer and a dense head) at ``path``; 3 classes by default.
    ``tflite``: with ``model.tflite`` (the float32 engine), checked as ``train`` checks it."""
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), dtype="float32")
    x = ScalePixels("tf")(inputs)
    x = keras.layers.Conv2D(4, 3, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(class_names), activation="softmax")(x)
    metadata = BundleMetadata(
        class_names=list(class_names), image_size=IMAGE_SIZE, backbone="tiny", **metadata_fields
    )
    model = keras.Model(inputs, outputs)
    files = {}
    if tflite:
        import numpy as np

        from logo_batch.evaluation.tflite_export import float32_engine

        rng = np.random.default_rng(seed)
        checked = rng.uniform(0, 255, (16, IMAGE_SIZE, IMAGE_SIZE, 3)).astype(np.float32)
        files["model.tflite"], metadata.engines["tflite-float32"] = float32_engine(model, checked)
    return save_bundle(model, metadata, path, export_serving=False, files=files)


def read_csv(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, keep_default_na=False, dtype=str, encoding="utf-8")


BACKGROUND_CLASSES = ["adidas", "apple", "cocacola", "none"]


def make_background_bundle(path: Path, *, rejection_threshold: float | None = None) -> Path:
    """A tiny 4-class bundle whose last class is the learned background ``none``."""
    return make_bundle(
        path,
        BACKGROUND_CLASSES,
        seed=1,
        rejection_threshold=rejection_threshold,
        background_class="none",
    )


def count_csv_rows(path) -> tuple[int, int]:
    """Reads a written CSV back: (rows, error rows); checks the header."""
    import csv as _csv

    from logo_batch.result_csv import ROW_COLUMNS

    with open(path, newline="", encoding="utf-8") as handle:
        reader = _csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == ROW_COLUMNS
        rows = list(reader)
    return len(rows), sum(bool(row["error"]) for row in rows)
