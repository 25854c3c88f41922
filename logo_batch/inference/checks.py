"""A bundle checked once, where a command opens it: every failure one line naming the
file and the reason (:class:`BundleError`), never a traceback.

- ``metadata.json``: read by :func:`~logo_batch.inference.bundle.read_metadata`, which
  checks its fields;
- ``model.keras``: a complete ``.keras`` archive (a zip holding ``config.json``, every
  member's CRC right) before Keras is asked, so a truncated file is "corrupt", never
  "File not found"; a model Keras refuses (safe mode: a ``Lambda`` layer, a class that
  is not Keras's, an edited ``config.json``, weights that do not fit it) is named with
  Keras's reason;
- ``model.tflite``, ``model.int8.tflite``: loadable by the TensorFlow Lite interpreter;
- the class names: as many as the model's outputs.

``logo-batch predict`` and ``evaluate`` open a bundle with :func:`open_checked` (the
engine ``--precision`` resolves to), ``quantize`` with :func:`load_checked` (the Keras
model), and the Beam job's driver checks what its workers will load with
:func:`check_for_workers` before any worker starts.
"""

from __future__ import annotations

import contextlib
import os
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path

from logo_batch.inference import engines
from logo_batch.inference.bundle import (
    METADATA_FILE,
    MODEL_FILE,
    Bundle,
    BundleMetadata,
    bundle_file,
    load_bundle,
    load_keras_model,
    open_bundle_file,
    read_metadata,
)

ENGINE_FILES = {engines.TFLITE_INT8: engines.INT8_FILE, engines.TFLITE_FLOAT32: engines.TFLITE_FILE}
"""The file each engine loads (a ``tf-`` engine: :data:`MODEL_FILE`)."""
_REASON_CHARS = 240


class BundleError(ValueError):
    """A bundle that cannot be used: one line, naming the file and the reason."""


def load_reason(error: BaseException) -> str:
    """Keras's or TensorFlow's reason a model file did not load, in one short line
    (Keras nests the cause as ``Exception encountered: ...`` paragraphs)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = str(error) or type(error).__name__
    cause = text.split("Exception encountered:")[-1].strip()
    paragraphs = [part.strip() for part in cause.split("\n\n") if part.strip()]
    if len(paragraphs) > 1 and paragraphs[0].startswith("A total of"):
        paragraphs = paragraphs[1:]  # "A total of 1 objects could not be loaded. ..."
    sentence = (paragraphs or [type(error).__name__])[0].splitlines()[0].split(". ")[0]
    if "Lambda" in text:
        sentence = (
            f"it holds a Lambda layer (Python code), which safe mode does not load: {sentence}"
        )
    sentence = sentence.rstrip(".")
    return sentence if len(sentence) <= _REASON_CHARS else sentence[: _REASON_CHARS - 3] + "..."


@contextlib.contextmanager
def loading(bundle_dir: str | os.PathLike, name: str) -> Iterator[None]:
    """Turns any failure to load the bundle's file ``name`` into a :class:`BundleError`
    naming it (Keras's warnings about what it skipped are not printed)."""
    path = bundle_file(bundle_dir, name)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    except BundleError:
        raise
    except FileNotFoundError as error:
        raise BundleError(f"{path}: no such file; {bundle_dir} is not a complete bundle") from error
    except Exception as error:  # noqa: BLE001  (Keras and TensorFlow raise many kinds)
        if str(error).startswith(f"{path}: "):  # already says which file and why
            raise BundleError(str(error).splitlines()[0]) from error
        raise BundleError(f"{path}: cannot load the model ({load_reason(error)})") from error


def checked_metadata(bundle_dir: str | os.PathLike) -> BundleMetadata:
    """:func:`~logo_batch.inference.bundle.read_metadata`, its failures as :class:`BundleError`."""
    try:
        return read_metadata(bundle_dir)
    except (OSError, ValueError) as error:
        message = (
            str(error)
            if not isinstance(error, OSError) or error.filename is None
            else (f"{error.filename}: {error.strerror}")
        )
        raise BundleError(message) from error


def check_keras_archive(bundle_dir: str | os.PathLike) -> None:
    """Raises :class:`BundleError` unless the bundle's ``model.keras`` is a complete
    archive: a zip (its central directory read) holding ``config.json``, every member's
    CRC right. Read through :func:`~logo_batch.inference.bundle.open_bundle_file`,
    local or remote alike."""
    path = bundle_file(bundle_dir, MODEL_FILE)
    try:
        with open_bundle_file(bundle_dir, MODEL_FILE) as handle, zipfile.ZipFile(handle) as archive:
            damaged = archive.testzip()
            names = set(archive.namelist())
    except FileNotFoundError as error:
        raise BundleError(
            f"{path}: no such file; {bundle_dir} is not a complete model bundle"
        ) from error
    except (zipfile.BadZipFile, OSError, EOFError, RuntimeError, ValueError) as error:
        reason = (error.strerror if isinstance(error, OSError) else None) or str(error)
        raise BundleError(
            f"{path}: the model file is unreadable or corrupt ({reason}); "
            f"save the bundle again (logo-batch train writes it)"
        ) from error
    if damaged is not None or "config.json" not in names:
        what = f"member {damaged} fails its CRC" if damaged else "no config.json"
        raise BundleError(f"{path}: the model file is corrupt ({what})")


def check_outputs(
    bundle_dir: str | os.PathLike, metadata: BundleMetadata, model, name: str
) -> None:
    """Raises :class:`BundleError` unless the model (loaded from the bundle's file
    ``name``) has one output per class name of the metadata."""
    shape = getattr(model, "output_shape", None)
    outputs = shape[-1] if shape else None
    if outputs is not None and outputs != len(metadata.class_names):
        raise BundleError(
            f"{bundle_file(bundle_dir, METADATA_FILE)}: {len(metadata.class_names)} class "
            f"names, but {bundle_file(bundle_dir, name)} has {outputs} outputs: the "
            "metadata is not this model's"
        )


def load_checked_engine(
    bundle_dir: str | os.PathLike,
    metadata: BundleMetadata,
    engine: str,
    num_threads: int | None = None,
):
    """The model ``engine`` runs (:func:`~logo_batch.inference.engines.load_engine`),
    its file checked and its outputs counted; failures as :class:`BundleError`."""
    name = ENGINE_FILES.get(engine, MODEL_FILE)
    if name == MODEL_FILE:
        check_keras_archive(bundle_dir)
    with loading(bundle_dir, name):
        model = engines.load_engine(
            engine, bundle_dir, lambda: load_keras_model(bundle_dir), num_threads
        )
    check_outputs(bundle_dir, metadata, model, name)
    return model


def open_checked(
    bundle_dir: str | os.PathLike, precision: str, num_threads: int | None = None
) -> tuple[Bundle, str]:
    """:func:`~logo_batch.inference.engines.open_for_inference`, checked: the bundle
    ready to classify with ``precision`` on this machine, and the engine it runs.
    Raises :class:`BundleError` (or ``ValueError`` for a precision the bundle cannot
    give) with one line."""
    metadata = checked_metadata(bundle_dir)
    engine = engines.resolve_engine(precision, metadata)
    model = load_checked_engine(bundle_dir, metadata, engine, num_threads)
    location = os.fspath(bundle_dir)
    return Bundle(location if "://" in location else Path(location), model, metadata), engine


def load_checked(bundle_dir: str | os.PathLike) -> Bundle:
    """:func:`~logo_batch.inference.bundle.load_bundle`, checked (the Keras model)."""
    metadata = checked_metadata(bundle_dir)
    check_keras_archive(bundle_dir)
    with loading(bundle_dir, MODEL_FILE):
        bundle = load_bundle(bundle_dir)
    check_outputs(bundle_dir, metadata, bundle.model, MODEL_FILE)
    return bundle


def check_for_workers(bundle_dir: str | os.PathLike, precision: str) -> BundleMetadata:
    """What the Beam job's workers will load, checked in the driver before any starts:
    the metadata, ``model.keras`` as an archive (the fallback of every engine), each
    TensorFlow Lite file ``precision`` may use on some worker
    (:func:`~logo_batch.inference.engines.may_use_int8`, ``may_use_tflite``), and the
    engine it resolves to on this machine, loaded (the Keras model only for a ``tf-``
    engine). Returns the metadata; raises :class:`BundleError` or ``ValueError``."""
    metadata = checked_metadata(bundle_dir)
    check_keras_archive(bundle_dir)
    here = engines.resolve_engine(precision, metadata)
    wanted = [here]
    if engines.may_use_int8(precision, metadata):
        wanted.append(engines.TFLITE_INT8)
    if engines.may_use_tflite(precision, metadata):
        wanted.append(engines.TFLITE_FLOAT32)
    for engine in dict.fromkeys(wanted):
        load_checked_engine(bundle_dir, metadata, engine, num_threads=1)
    return metadata
