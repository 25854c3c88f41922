"""The self-describing model bundle: ``model.keras`` + ``metadata.json`` (+ ``serving/``).

A bundle holds everything ``predict`` and the Beam job need: the Keras model (which
contains its own pixel scaling), the class names, the input size and how images were
preprocessed, the dataset it was trained on and its metrics.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import keras

from logo_batch import __version__
from logo_batch import layers as _layers  # noqa: F401  (registers custom layers)

BUNDLE_FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
SERVING_DIR = "serving"

PREPROCESSING = {
    "decode": "RGB uint8; EXIF orientation applied; JPEG IDCT INTEGER_ACCURATE; "
    "single-view inputs: JPEG DCT-downscaled 1/2-1/8 while both sides stay >= image_size",
    "resize": "bilinear, antialias, to image_size x image_size (aspect not kept)",
    "input": "float32 pixels in [0, 255]; the model scales them for its backbone",
    "function": "logo_batch.preprocessing.preprocess_image_file",
}


@dataclass
class BundleMetadata:
    """What a bundle says about its model."""

    class_names: list[str]
    image_size: int
    backbone: str
    weights: str = "unknown"
    head: str = "default"
    dataset: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)
    rejection_threshold: float | None = None
    # The class a model learned for "no logo" (the last of class_names), or None for a
    # model that only knows brands.
    background_class: str | None = None
    preprocessing: dict[str, str] = field(default_factory=lambda: dict(PREPROCESSING))
    training: dict[str, Any] = field(default_factory=dict)
    format_version: int = BUNDLE_FORMAT_VERSION
    logo_batch_version: str = __version__
    created: str = field(
        default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds")
    )

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BundleMetadata:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass
class Bundle:
    """A loaded bundle."""

    path: Path
    model: keras.Model
    metadata: BundleMetadata

    @property
    def class_names(self) -> list[str]:
        return self.metadata.class_names

    @property
    def image_size(self) -> int:
        return self.metadata.image_size


def model_path(bundle_dir: str | os.PathLike) -> str:
    """Path of the bundle's ``.keras`` file (what Beam's model handler loads)."""
    return os.path.join(os.fspath(bundle_dir), MODEL_FILE)


def read_metadata(bundle_dir: str | os.PathLike) -> BundleMetadata:
    """Reads ``metadata.json`` of a local or remote (``gs://``, ...) bundle; raises a
    clear error when the folder is not a bundle."""
    import tensorflow as tf  # its file system reads local folders and gs://, s3://, ...

    path = f"{os.fspath(bundle_dir).rstrip('/')}/{METADATA_FILE}"
    if not tf.io.gfile.exists(path):
        raise FileNotFoundError(f"{bundle_dir}: not a logo-batch model bundle (no {METADATA_FILE})")
    try:
        with tf.io.gfile.GFile(path, "rb") as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: invalid JSON: {error}") from error
    metadata = BundleMetadata.from_dict(data)
    if metadata.format_version > BUNDLE_FORMAT_VERSION:
        raise ValueError(
            f"{path}: bundle format {metadata.format_version} is newer than this "
            f"logo-batch understands ({BUNDLE_FORMAT_VERSION}); upgrade logo-batch"
        )
    return metadata


def load_bundle(bundle_dir: str | os.PathLike) -> Bundle:
    """Loads a bundle's model (Keras safe mode, no optimizer) and metadata."""
    metadata = read_metadata(bundle_dir)
    model = keras.models.load_model(model_path(bundle_dir), compile=False, safe_mode=True)
    return Bundle(Path(bundle_dir), model, metadata)


def _umask() -> int:
    """The process umask (reading it means setting it: set it straight back)."""
    mask = os.umask(0o077)
    os.umask(mask)
    return mask


def save_bundle(
    model: keras.Model,
    metadata: BundleMetadata,
    bundle_dir: str | os.PathLike,
    *,
    export_serving: bool = True,
) -> Path:
    """Writes a bundle atomically: built in a temporary sibling folder, then renamed.

    A failure midway leaves no half-written bundle at ``bundle_dir``; an existing
    bundle there is replaced only once the new one is complete.
    """
    final = Path(bundle_dir)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    staging.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700; a bundle is an ordinary folder
    try:
        model.save(staging / MODEL_FILE)
        if export_serving:
            model.export(str(staging / SERVING_DIR), format="tf_saved_model", verbose=False)
        (staging / METADATA_FILE).write_text(metadata.to_json() + "\n", encoding="utf-8")
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            final.rename(old)
            staging.rename(final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            staging.rename(final)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return final
