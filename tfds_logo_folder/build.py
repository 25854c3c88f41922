"""``build_folder_dataset``: a user's logo folder to a TFDS dataset ``NAME`` in ``data_dir``.

Both configs are built into a temporary folder beside ``data_dir/NAME`` and moved into
place together when both are complete: a failed build leaves nothing at ``NAME``.
The dataset records where it came from (``metadata.json``: the folder, a fingerprint of
every file's sha256, ``boxes.csv`` and the split fractions). Building again from the
same files and fractions changes nothing; from other files (or fractions) it refuses
unless ``overwrite``, and then the old dataset is replaced only once the new one is
complete.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import math
import os
import re
import shutil
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

import tensorflow_datasets as tfds

import tfds_flickr27  # noqa: F401  (turns off TFDS's GCS look-ups)
from tfds_flickr27.names import CONFIG_NAMES, DATASET_NAME
from tfds_logo_folder.builder import VERSION, builder_class
from tfds_logo_folder.layout import BOXES_FILE, FolderError, read_folder
from tfds_logo_folder.plan import SPLITS, FolderIndex, plan
from tfds_logo_folder.scan import scan_files

DEFAULT_FRACTIONS = (0.7, 0.15, 0.15)  # train, validation, test: FlickrLogos-27's crops
SOURCE_KEY = "source"  # the metadata entry saying what the dataset was built from
_NAME = re.compile(r"[a-z][a-z0-9_]*")

BUILT, UNCHANGED, REPLACED = "built", "unchanged", "replaced"


@dataclasses.dataclass
class BuildResult:
    """What ``build_folder_dataset`` did (``status``: built, unchanged or replaced)."""

    status: str
    path: Path  # data_dir/NAME
    configs: list[str]  # the configs built (a config with no example is not)
    index: FolderIndex


def check_name(name: str) -> None:
    """Raises ``ValueError`` unless ``name`` can name a new TFDS dataset."""
    if not _NAME.fullmatch(name):
        raise ValueError(
            f"--name {name!r}: a dataset name is snake_case: a lower-case letter, then "
            "lower-case letters, digits and _"
        )
    if name == DATASET_NAME:
        raise ValueError(f"--name {name!r} is FlickrLogos-27's own dataset: choose another")
    if name in tfds.list_builders(with_community_datasets=False):
        raise ValueError(f"--name {name!r} is a TFDS catalogue dataset: choose another")


def check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    """Raises ``ValueError`` unless train, validation, test are > 0 and sum to 1."""
    values = tuple(float(f) for f in fractions)
    if len(values) != 3 or min(values) <= 0 or not math.isclose(sum(values), 1.0, abs_tol=1e-6):
        raise ValueError(
            f"--split {','.join(map(str, fractions))}: three fractions (train, validation, "
            "test), each above 0, summing to 1 (e.g. 0.7,0.15,0.15)"
        )
    return values  # type: ignore[return-value]


def fingerprint(index: FolderIndex, fractions: Sequence[float]) -> str:
    """What the dataset is built from: every file's path and sha256, boxes.csv, fractions."""
    boxes = index.folder / BOXES_FILE
    source = {
        "files": sorted((name, facts.sha256) for name, facts in index.facts.items()),
        "boxes": hashlib.sha256(boxes.read_bytes()).hexdigest() if boxes.exists() else None,
        "split": list(fractions),
        "version": VERSION,
    }
    return hashlib.sha256(json.dumps(source).encode()).hexdigest()


def built_source(path: Path) -> dict | None:
    """The ``source`` a dataset at ``data_dir/NAME`` records (``None``: not one of ours)."""
    for config in CONFIG_NAMES:
        metadata = path / config / VERSION / "metadata.json"
        if metadata.is_file():
            return json.loads(metadata.read_text()).get(SOURCE_KEY)
    return None


def _replace(new: Path, path: Path) -> None:
    """Moves ``new`` to ``path``; an old ``path`` is moved aside first, removed last."""
    if not path.exists():
        os.rename(new, path)
        return
    old = Path(tempfile.mkdtemp(dir=path.parent, prefix=f".{path.name}.old-"))
    os.rename(path, old / path.name)
    os.rename(new, path)
    shutil.rmtree(old)


def build_folder_dataset(
    folder: str | os.PathLike,
    name: str,
    data_dir: str | os.PathLike,
    fractions: Sequence[float] = DEFAULT_FRACTIONS,
    *,
    overwrite: bool = False,
    progress: bool = False,
) -> BuildResult:
    """Builds ``NAME/images`` and ``NAME/crops`` in the local folder ``data_dir`` from
    ``folder``; raises ``ValueError`` (:class:`FolderError` naming the file) when it
    cannot, and when ``data_dir/NAME`` holds another dataset and not ``overwrite``.
    ``progress``: TFDS's progress bars and messages (they name the temporary folder)."""
    check_name(name)
    fractions = check_fractions(fractions)
    listing = read_folder(folder)
    index = plan(listing, scan_files(listing.folder, listing.files), fractions)
    source = {
        "folder": os.fspath(listing.folder.resolve()),
        "fingerprint": fingerprint(index, fractions),
        "split": dict(zip(SPLITS, fractions, strict=True)),
    }
    data_dir = Path(data_dir)
    path = data_dir / name
    built = built_source(path) if path.exists() else None
    if built is not None and built.get("fingerprint") == source["fingerprint"]:
        return BuildResult(UNCHANGED, path, _configs(path), index)
    if path.exists() and not overwrite:
        what = (
            f"was built from other files or fractions (from {built.get('folder')})"
            if built
            else "exists, not built by `logo-batch dataset build`"
        )
        raise FolderError(
            f"{path} {what}; pass --overwrite to replace it (the old dataset stays until "
            "the new one is complete)"
        )
    existed = path.exists()
    data_dir.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(dir=data_dir, prefix=f".{name}.building-"))
    try:
        tfds.display_progress_bar(progress)
        configs = []
        cls = builder_class(name)
        for config in CONFIG_NAMES:
            builder = cls(index=index, metadata={SOURCE_KEY: source}, config=config, data_dir=work)
            if builder.splits():
                with contextlib.redirect_stdout(sys.stdout if progress else io.StringIO()):
                    builder.download_and_prepare(
                        download_config=tfds.download.DownloadConfig(try_download_gcs=False)
                    )
                configs.append(config)
        _replace(work / name, path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return BuildResult(REPLACED if existed else BUILT, path, configs, index)


def _configs(path: Path) -> list[str]:
    return [config for config in CONFIG_NAMES if (path / config / VERSION).is_dir()]
