"""The self-describing model bundle: ``model.keras`` + ``metadata.json`` (+ ``serving/``).

A bundle holds everything ``predict`` and the Beam job need: the Keras model (which
contains its own pixel scaling), the class names, the input size and how images were
preprocessed, the dataset it was trained on and its metrics.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from logo_batch import __version__

if TYPE_CHECKING:
    import keras

BUNDLE_FORMAT_VERSION = 1
MODEL_FILE = "model.keras"
METADATA_FILE = "metadata.json"
SERVING_DIR = "serving"
_COPY_CHUNK = 1 << 20

PREPROCESSING = {
    "decode": "RGB uint8; EXIF orientation applied; JPEG IDCT INTEGER_ACCURATE; "
    "single-view inputs: JPEG DCT-downscaled 1/2-1/8 while both sides stay >= image_size",
    "resize": "bilinear, antialias, to image_size x image_size (aspect not kept)",
    "input": "float32 pixels in [0, 255]; the model scales them for its backbone",
    "function": "logo_batch.inference.preprocessing.preprocess_image_file",
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
    # What `logo-batch quantize` measured of the bundle's int8 model (empty: none).
    quantization: dict[str, Any] = field(default_factory=dict)
    # Other engines the bundle carries and what their check measured, by engine name
    # (``tflite-float32``: ``model.tflite``; see logo_batch.inference.engines).
    engines: dict[str, Any] = field(default_factory=dict)
    # Whole-photo mode's settings chosen on validation photos (``cascade``: see
    # logo_batch.inference.whole_photo.Cascade); empty: every window of every photo.
    whole_photo: dict[str, Any] = field(default_factory=dict)
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
    """A loaded bundle (``path``: the folder, or the URI of a remote bundle)."""

    path: Path | str
    model: keras.Model
    metadata: BundleMetadata

    @property
    def class_names(self) -> list[str]:
        return self.metadata.class_names

    @property
    def image_size(self) -> int:
        return self.metadata.image_size


_URI = re.compile(r"[a-zA-Z][-a-zA-Z0-9+.]*://")


def bundle_file(bundle_dir: str | os.PathLike, name: str) -> str:
    """Where the file ``name`` (e.g. :data:`MODEL_FILE`) of a bundle is: a local path
    joined as the OS joins paths, or for a bundle given as a URI (``gs://``, ``s3://``,
    ``ram://``, ``file://``, ...) that URI and ``/name``. No file system is asked."""
    location = os.fspath(bundle_dir)
    if _URI.match(location):
        return f"{location.rstrip('/')}/{name}"
    return os.path.join(location, name)


def model_path(bundle_dir: str | os.PathLike) -> str:
    """Path of the bundle's ``.keras`` file: ``bundle_file(bundle_dir, MODEL_FILE)``."""
    return bundle_file(bundle_dir, MODEL_FILE)


@contextlib.contextmanager
def open_bundle_file(bundle_dir: str | os.PathLike, name: str) -> Iterator[IO[bytes]]:
    """Opens the file ``name`` of a local or remote bundle to read its bytes (a seekable
    handle): every reader of a bundle goes through here.

    Local paths are opened directly; a bundle given as a URI goes through TensorFlow's
    ``tf.io.gfile`` (``gs://``, ``s3://``, ``hdfs://``, ``ram://``, ...). Errors are raised
    as ``OSError``: ``FileNotFoundError`` when there is no such file (or its folder is
    not one), naming :func:`bundle_file`'s path.
    """
    path = bundle_file(bundle_dir, name)
    if not _URI.match(path):  # a local file: no TensorFlow needed (a driver stays light)
        with open(path, "rb") as handle:
            yield handle
        return
    import tensorflow as tf  # its file system reads gs://, s3://, hdfs://, ...

    try:
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path)
        with tf.io.gfile.GFile(path, "rb") as handle:
            yield handle
    except tf.errors.OpError as error:  # raised by the open or by the caller's reads
        code = {
            tf.errors.NotFoundError: errno.ENOENT,
            tf.errors.PermissionDeniedError: errno.EACCES,
        }.get(type(error), errno.EIO)
        raise OSError(code, error.message or os.strerror(code), path) from error


def _field_problem(data: Any) -> str:
    """What is wrong with the fields of a ``metadata.json`` ("" when nothing)."""
    if not isinstance(data, dict):
        return "not a JSON object"
    names = data.get("class_names")
    if not isinstance(names, list) or not names or not all(isinstance(n, str) and n for n in names):
        return "class_names must be a non-empty list of names"
    if len(set(names)) != len(names):
        return f"class_names repeat a name: {sorted({n for n in names if names.count(n) > 1})}"
    size = data.get("image_size")
    if not isinstance(size, int) or isinstance(size, bool) or size < 1:
        return f"image_size must be a whole number of pixels, not {size!r}"
    if not isinstance(data.get("backbone"), str):
        return "no backbone"
    if data.get("background_class") not in (None, *names):
        return f"background_class {data['background_class']!r} is not one of the class_names"
    threshold = data.get("rejection_threshold")
    if threshold is not None and not (isinstance(threshold, (int, float)) and 0 <= threshold <= 1):
        return f"rejection_threshold must be a number in [0, 1], not {threshold!r}"
    return ""


def read_metadata(bundle_dir: str | os.PathLike) -> BundleMetadata:
    """Reads ``metadata.json`` of a local or remote (``gs://``, ...) bundle; raises a
    clear error when the folder is not a bundle."""
    path = bundle_file(bundle_dir, METADATA_FILE)
    try:
        with open_bundle_file(bundle_dir, METADATA_FILE) as handle:
            data = json.loads(handle.read().decode("utf-8"))
    except FileNotFoundError as error:
        raise FileNotFoundError(
            f"{bundle_dir}: not a logo-batch model bundle (no {METADATA_FILE})"
        ) from error
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: invalid JSON: {error}") from error
    problem = _field_problem(data)
    if problem:
        raise ValueError(f"{path}: {problem}")
    metadata = BundleMetadata.from_dict(data)
    if metadata.format_version > BUNDLE_FORMAT_VERSION:
        raise ValueError(
            f"{path}: bundle format {metadata.format_version} is newer than this "
            f"logo-batch understands ({BUNDLE_FORMAT_VERSION}); upgrade logo-batch"
        )
    return metadata


def load_keras_model(bundle_dir: str | os.PathLike) -> keras.Model:
    """The bundle's Keras model (safe mode, no optimizer); a remote bundle's ``.keras``
    file is copied to a local temporary file first."""
    import keras

    from logo_batch.inference import layers  # noqa: F401  (registers the custom layers)

    location = os.fspath(bundle_dir)
    if not _URI.match(location):
        return keras.models.load_model(model_path(location), compile=False, safe_mode=True)
    with tempfile.TemporaryDirectory(prefix="logo_batch_bundle-") as local:
        copy = os.path.join(local, MODEL_FILE)
        with open_bundle_file(bundle_dir, MODEL_FILE) as source, open(copy, "wb") as target:
            shutil.copyfileobj(source, target, _COPY_CHUNK)
        return keras.models.load_model(copy, compile=False, safe_mode=True)


def load_bundle(bundle_dir: str | os.PathLike) -> Bundle:
    """Loads a bundle's Keras model (:func:`load_keras_model`) and metadata."""
    metadata = read_metadata(bundle_dir)
    location = os.fspath(bundle_dir)
    path: Path | str = location if _URI.match(location) else Path(location)
    return Bundle(path, load_keras_model(bundle_dir), metadata)


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
    files: dict[str, bytes] | None = None,
) -> Path:
    """Writes a bundle atomically: built in a temporary sibling folder, then renamed.
    ``files``: other files it holds, by name (e.g. ``model.tflite``).

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
        for name, content in (files or {}).items():
            (staging / name).write_bytes(content)
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


def write_bundle_file(bundle_dir: str | os.PathLike, name: str, content: bytes) -> Path:
    """Adds or replaces one file of a local bundle atomically: written beside it, then
    renamed over it (a failure leaves the old file, never half of a new one)."""
    folder = Path(bundle_dir)
    if _URI.match(os.fspath(bundle_dir)) or not (folder / METADATA_FILE).is_file():
        raise ValueError(f"{bundle_dir}: not a local logo-batch model bundle (no {METADATA_FILE})")
    handle, temporary = tempfile.mkstemp(prefix=f".{name}.tmp-", dir=folder)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(content)
        os.chmod(temporary, 0o666 & ~_umask())
        os.replace(temporary, folder / name)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return folder / name
