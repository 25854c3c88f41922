"""Streaming reads of the FlickrLogos-27 archive (outer tar.gz holding an images tar.gz).

Nothing is extracted to disk. The annotation files come after the images in the stream,
so :func:`scan` reads the whole archive once (annotations, image sha256 and sizes) and
:func:`iter_images` streams it again for the images a split needs.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import logging
import os
import posixpath
import tarfile
from collections.abc import Collection, Iterator

from PIL import Image

from tfds_flickr27 import annotations as ann

ROOT = "flickr_logos_27_dataset"
IMAGES_ARCHIVE = f"{ROOT}_images.tar.gz"
TRAINING_FILE = f"{ROOT}_training_set_annotation.txt"
QUERY_FILE = f"{ROOT}_query_set_annotation.txt"

log = logging.getLogger(__name__)


class ArchiveError(ValueError):
    """The archive is missing a member or an image; the message names archive and member."""


@dataclasses.dataclass
class ArchiveIndex:
    """Everything the split plan needs, read in one pass over the archive."""

    training: ann.TrainingAnnotations
    query: dict[str, str]  # filename -> class or "none"
    sha256: dict[str, str]  # image filename -> hex digest of its bytes
    size: dict[str, tuple[int, int]]  # image filename -> (width, height), no EXIF rotation


def _open(path: str | os.PathLike) -> io.BufferedReader:
    from etils import epath  # local paths and the file systems TFDS supports

    return epath.Path(path).open("rb")


def _iter_inner(archive: str, outer: tarfile.TarFile, member: tarfile.TarInfo):
    """Yields ``(basename, bytes)`` of every JPEG inside the images tar.gz member."""
    fileobj = outer.extractfile(member)
    with tarfile.open(fileobj=fileobj, mode="r|gz") as inner:
        for image in inner:
            if image.isfile() and image.name.lower().endswith(".jpg"):
                data = inner.extractfile(image).read()
                yield posixpath.basename(image.name), data


def scan(path: str | os.PathLike) -> ArchiveIndex:
    """Reads annotations, image hashes and sizes; raises :class:`ArchiveError` if incomplete."""
    archive = os.fspath(path)
    texts: dict[str, bytes] = {}
    sha256: dict[str, str] = {}
    size: dict[str, tuple[int, int]] = {}
    with _open(archive) as raw, tarfile.open(fileobj=raw, mode="r|gz") as outer:
        for member in outer:
            name = posixpath.basename(member.name)
            if name == IMAGES_ARCHIVE:
                for filename, data in _iter_inner(archive, outer, member):
                    sha256[filename] = hashlib.sha256(data).hexdigest()
                    with Image.open(io.BytesIO(data)) as image:
                        size[filename] = image.size
            elif name in (TRAINING_FILE, QUERY_FILE):
                texts[name] = outer.extractfile(member).read()
    for needed in (IMAGES_ARCHIVE, TRAINING_FILE, QUERY_FILE):
        if needed not in texts and not (needed == IMAGES_ARCHIVE and sha256):
            raise ArchiveError(f"{archive}: member {ROOT}/{needed} not found (or empty)")
    training = ann.parse_training(texts[TRAINING_FILE], f"{archive}:{TRAINING_FILE}")
    query = ann.parse_query(texts[QUERY_FILE], f"{archive}:{QUERY_FILE}")
    missing = sorted((set(training.labels) | set(query)) - set(sha256))
    if missing:
        raise ArchiveError(
            f"{archive}: {len(missing)} annotated images are not in {IMAGES_ARCHIVE}, "
            f"e.g. {missing[:5]}"
        )
    return ArchiveIndex(training=training, query=query, sha256=sha256, size=size)


def iter_images(path: str | os.PathLike, wanted: Collection[str]) -> Iterator[tuple[str, bytes]]:
    """Streams the archive once, yielding ``(filename, bytes)`` of the ``wanted`` images."""
    archive = os.fspath(path)
    wanted = set(wanted)
    found: set[str] = set()
    with _open(archive) as raw, tarfile.open(fileobj=raw, mode="r|gz") as outer:
        for member in outer:
            if posixpath.basename(member.name) == IMAGES_ARCHIVE:
                for filename, data in _iter_inner(archive, outer, member):
                    if filename in wanted:
                        found.add(filename)
                        yield filename, data
                break  # the annotation files after the images are not needed here
    if found != wanted:
        raise ArchiveError(f"{archive}: images not found: {sorted(wanted - found)[:5]}")
