"""The pieces of tests/test_hostile_input.py that are not its tables: damaged bundles,
rewritten archives, logo folders with bad rows, running a command in process.

Not a test module itself (pytest collects nothing here).
"""

from __future__ import annotations

import contextlib
import gzip
import hashlib
import io
import json
import os
import shutil
import tarfile
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

from beam_support import CLASSES, IMAGE_SIZE
from PIL import Image

# ------------------------------------------------------------------ running commands


def run_command(main: Callable[[list[str]], int], argv: Sequence[str]) -> tuple[int, str, str]:
    """``main(argv)`` in this process: (exit code, stdout, stderr); a usage error's
    ``SystemExit`` is its exit code."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(list(argv))
        except SystemExit as stop:
            code = stop.code
    return code, out.getvalue(), err.getvalue()


def refusal_lines(err: str) -> list[str]:
    """What a command said on stderr, without the log lines of the libraries it loaded
    in this process (``WARNING:root:...`` from Beam's optional imports)."""
    return [line for line in err.splitlines() if line.strip() and not line.startswith("WARNING:")]


def snapshot(folder: Path) -> dict[str, str]:
    """Every regular file below ``folder`` (not following links): its SHA-256."""
    found = {}
    for path in sorted(folder.rglob("*")):
        if path.is_file() and not path.is_symlink():
            found[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
    return found


def sparse_file(path: Path, size: int) -> None:
    """A file of ``size`` bytes that takes no disk space (``truncate -s``)."""
    with open(path, "wb") as handle:
        handle.truncate(size)


# ------------------------------------------------------------------ damaged bundles


def cut_in_half(path: Path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


def edit_metadata(bundle: Path, **fields) -> None:
    metadata = json.loads((bundle / "metadata.json").read_text(encoding="utf-8"))
    metadata.update(fields)
    (bundle / "metadata.json").write_text(json.dumps(metadata), encoding="utf-8")


def edit_keras_config(bundle: Path, old: bytes, new: bytes) -> None:
    """``model.keras`` with ``old`` replaced by ``new`` in its ``config.json`` (the
    archive rewritten whole, so its CRCs are right: Keras reads the edit)."""
    source = (bundle / "model.keras").read_bytes()
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(source)) as old_zip, zipfile.ZipFile(out, "w") as new_zip:
        for item in old_zip.infolist():
            data = old_zip.read(item.filename)
            if item.filename == "config.json":
                assert old in data, data[:200]
                data = data.replace(old, new)
            new_zip.writestr(item, data)
    (bundle / "model.keras").write_bytes(out.getvalue())


def shift(x):
    """A named function in a Lambda layer: Python code safe mode does not load."""
    return x + 1.0


def lambda_bundle(bundle: Path) -> None:
    """Replaces ``bundle`` with one whose model holds a ``Lambda`` layer."""
    import keras

    from logo_batch.inference.bundle import BundleMetadata, save_bundle

    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Lambda(shift)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(CLASSES), activation="softmax")(x)
    metadata = BundleMetadata(class_names=list(CLASSES), image_size=IMAGE_SIZE, backbone="tiny")
    shutil.rmtree(bundle)
    save_bundle(keras.Model(inputs, outputs), metadata, bundle, export_serving=False)


def garbage_tflite(bundle: Path, name: str) -> None:
    """A ``name`` that is not a TensorFlow Lite model, declared in the metadata as the
    bundle's checked int8 (``model.int8.tflite``) or float32 (``model.tflite``) engine."""
    (bundle / name).write_bytes(b"not a flatbuffer " * 64)
    if name == "model.int8.tflite":
        edit_metadata(bundle, quantization={"kept_accuracy": True})
    else:
        edit_metadata(bundle, engines={"tflite-float32": {"kept_scores": True}})


# ------------------------------------------------------------ rewritten FL27 archives


def read_tar_gz(data: bytes) -> list[tuple[str, bytes | None]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return [
            (m.name + ("/" if m.isdir() else ""), tar.extractfile(m).read() if m.isfile() else None)
            for m in tar.getmembers()
        ]


def write_tar_gz(members: list[tuple[str, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name.rstrip("/"))
            if data is None:
                info.type = tarfile.DIRTYPE
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def images_member() -> str:
    from tfds_flickr27.archive import IMAGES_ARCHIVE, ROOT

    return f"{ROOT}/{IMAGES_ARCHIVE}"


def rewrite_archive(
    source: Path,
    target: Path,
    *,
    images: dict[str, bytes] | None = None,
    training_suffix: str = "",
    inner_cut: int | None = None,
) -> Path:
    """A copy of ``source`` with images replaced, lines appended, the images tar.gz cut."""
    from tfds_flickr27.archive import ROOT, TRAINING_FILE

    images = images or {}
    rewritten = []
    for name, data in read_tar_gz(source.read_bytes()):
        if name == images_member():
            inner = [(n, images.get(n.rsplit("/", 1)[-1], d)) for n, d in read_tar_gz(data)]
            data = write_tar_gz(inner)
            data = data if inner_cut is None else data[:inner_cut]
        elif name == f"{ROOT}/{TRAINING_FILE}":
            data = data + training_suffix.encode("ascii")
        rewritten.append((name, data))
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(write_tar_gz(rewritten))
    return target


def cut_in_scan(data: bytes) -> bytes:
    """The JPEG cut halfway through its compressed data: every header marker intact."""
    start = data.index(b"\xff\xda")  # SOS: the entropy-coded data follows
    return data[: start + (len(data) - start) // 2]


class ArchiveContents:
    """What an archive holds: annotations, image bytes, their hashes."""

    def __init__(self, path: Path):
        from tfds_flickr27 import annotations as ann
        from tfds_flickr27.archive import QUERY_FILE, ROOT, TRAINING_FILE

        members = dict(read_tar_gz(path.read_bytes()))
        self.training_text = members[f"{ROOT}/{TRAINING_FILE}"].decode()
        self.training = ann.parse_training(self.training_text)
        self.query = ann.parse_query(members[f"{ROOT}/{QUERY_FILE}"])
        self.images = {
            n.rsplit("/", 1)[-1]: d
            for n, d in read_tar_gz(members[images_member()])
            if d is not None
        }
        self.sha256 = {n: hashlib.sha256(d).hexdigest() for n, d in self.images.items()}

    def plain_training_image(self, label: str) -> str:
        """An image of ``label`` only, with a non-zero box, byte-unique in the archive."""
        digests = list(self.sha256.values())
        for name, labels in sorted(self.training.labels.items()):
            if (
                labels == [label]
                and any(b.filename == name for b in self.training.boxes)
                and digests.count(self.sha256[name]) == 1
            ):
                return name
        raise AssertionError(f"no plain {label} image")

    def query_image(self, label: str) -> str:
        return next(n for n, lab in sorted(self.query.items()) if lab == label)


def as_manual_dir(path: Path) -> Path:
    """Moves ``path`` to ``<its dir>/<ARCHIVE_NAME>``: the manual dir layout."""
    from tfds_flickr27 import ARCHIVE_NAME

    directory = path.parent / path.name.replace(".", "_")
    directory.mkdir()
    path.rename(directory / ARCHIVE_NAME)
    return directory


# ------------------------------------------------------------ a user's logo folder


def add_row(folder: Path, row: str) -> str:
    """Appends a row to boxes.csv; returns its ``boxes.csv:<line>``."""
    path = folder / "boxes.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([*lines, row]) + "\n")
    return f"boxes.csv:{len(lines) + 1}"


def put(folder: Path, name: str, data: bytes) -> str:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(data)
    return name


def remove(folder: Path, *names: str) -> None:
    for name in names:
        path = folder / name
        shutil.rmtree(path) if path.is_dir() else path.unlink()


def png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (40, 40), (200, 0, 0)).save(buffer, format="PNG")
    return buffer.getvalue()


def jpeg(size=(40, 30), exif_orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    exif = Image.Exif()
    if exif_orientation:
        exif[0x0112] = exif_orientation
    Image.new("RGB", size, (0, 0, 200)).save(buffer, format="JPEG", exif=exif)
    return buffer.getvalue()


def photo(folder: Path) -> bytes:
    return (folder / "photos/00_000.jpg").read_bytes()


def os_name(folder: Path, name: str | bytes) -> str:
    """``folder/name`` as the OS gives it (a name of bytes that are not UTF-8 decoded
    with surrogates, PEP 383)."""
    return os.fsdecode(os.path.join(os.fsencode(folder), os.fsencode(name)))
