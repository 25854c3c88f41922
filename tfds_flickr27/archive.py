"""Streaming reads of the FlickrLogos-27 archive (outer tar.gz holding an images tar.gz).

Nothing is extracted to disk. :func:`scan` reads the whole archive once: the annotation
files (which come after the images in the tar), and for every image its sha256, its size
and a decode check (:func:`tfds_flickr27.jpeg.check_images`, in batches on one thread
per core while the archive streams); the builder keeps the image bytes it read
(``keep_images``) instead of reading the archive again. :func:`iter_images` streams the
archive for some images (:func:`extract_images` writes them to a folder).
:mod:`tfds_flickr27.checks` then applies the builder's policy to what the scan found.

Every read error (a cut or corrupt gzip or tar stream, at either level) is raised as
:class:`ArchiveError` naming the archive and the member being read.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import logging
import os
import posixpath
import tarfile
import zlib
from collections.abc import Collection, Iterator

from tfds_flickr27 import annotations as ann
from tfds_flickr27 import gunzip
from tfds_flickr27.jpeg import check_images
from tfds_flickr27.parallel import batches, ordered_map

ROOT = "flickr_logos_27_dataset"
IMAGES_ARCHIVE = f"{ROOT}_images.tar.gz"
TRAINING_FILE = f"{ROOT}_training_set_annotation.txt"
QUERY_FILE = f"{ROOT}_query_set_annotation.txt"

log = logging.getLogger(__name__)

_INNER_CHUNK_SIZE = 1 << 14

# What a cut or corrupt gzip/tar stream raises (EOFError, zlib.error, tar and OS errors).
_READ_ERRORS = (tarfile.TarError, EOFError, OSError, zlib.error)


class ArchiveError(ValueError):
    """The archive is damaged or incomplete; the message names archive and member."""


@dataclasses.dataclass(frozen=True)
class Unusable:
    """An image that does not decode: where it is and why."""

    archive: str
    member: str  # its name inside the images tar.gz
    reason: str

    def __str__(self) -> str:
        return f"{self.archive}: {IMAGES_ARCHIVE}: {self.member}: {self.reason}"


@dataclasses.dataclass
class ArchiveIndex:
    """Everything the split plan needs, read in one pass over the archive."""

    training: ann.TrainingAnnotations
    query: dict[str, str]  # filename -> class or "none"
    sha256: dict[str, str]  # image filename -> hex digest of its bytes
    size: dict[str, tuple[int, int]]  # decodable image -> (width, height), no EXIF rotation
    unusable: dict[str, Unusable] = dataclasses.field(default_factory=dict)
    member: dict[str, str] = dataclasses.field(default_factory=dict)  # name in the images tar
    # image filename -> its bytes; filled only by ``scan(..., keep_images=True)``.
    images: dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False)


def _open(path: str | os.PathLike) -> io.BufferedReader:
    from etils import epath  # local paths and the file systems TFDS supports

    return epath.Path(path).open("rb")


class _TarStream:
    """A streamed tar.gz whose read errors name ``where`` and the current member.

    The gzip layer (:mod:`tfds_flickr27.gunzip`) checks the end-of-stream marker, CRC and
    length; :meth:`finish` reads to that end, so an archive cut anywhere, even between two
    members or inside the gzip trailer, fails instead of looking shorter.
    """

    def __init__(self, fileobj, where: str, chunk_size: int = gunzip.CHUNK_SIZE):
        self.where = where
        self.last: str | None = None
        self.gzip = gunzip.open_gunzip(fileobj, chunk_size)
        try:
            self.tar = tarfile.open(fileobj=self.gzip, mode="r|")
        except _READ_ERRORS as error:
            raise self._error(error, "at its first member") from error

    def _error(self, error: BaseException, position: str) -> ArchiveError:
        return ArchiveError(
            f"{self.where}: cut short or corrupt {position} ({type(error).__name__}: {error})"
        )

    def _after(self) -> str:
        return f"after member {self.last}" if self.last else "at its first member"

    def __iter__(self) -> Iterator[tarfile.TarInfo]:
        members = iter(self.tar)
        while True:
            try:
                member = next(members)
            except StopIteration:
                return
            except _READ_ERRORS as error:
                raise self._error(error, self._after()) from error
            self.last = member.name
            yield member

    def read(self, member: tarfile.TarInfo) -> bytes:
        try:
            data = self.tar.extractfile(member).read()
        except _READ_ERRORS as error:
            raise self._error(error, f"in member {member.name}") from error
        if len(data) != member.size:
            raise ArchiveError(
                f"{self.where}: cut short in member {member.name} "
                f"({len(data)} of {member.size} bytes)"
            )
        return data

    def finish(self) -> None:
        """Reads to the end of the gzip stream (checks its trailer)."""
        try:
            while self.gzip.read(1 << 20):
                pass
        except _READ_ERRORS as error:
            raise self._error(error, f"{self._after()}, at the end of the stream") from error


def _iter_inner(archive: str, outer: _TarStream, member: tarfile.TarInfo):
    """Yields ``(basename, member name, bytes)`` of every JPEG in the images tar.gz member."""
    # Read from the outer stream in small chunks: a cut there names the image being read.
    inner = _TarStream(
        outer.tar.extractfile(member), f"{archive}: member {member.name}", _INNER_CHUNK_SIZE
    )
    for image in inner:
        if image.isfile() and image.name.lower().endswith(".jpg"):
            yield posixpath.basename(image.name), image.name, inner.read(image)
    inner.finish()


@dataclasses.dataclass(frozen=True)
class _Scanned:
    """One image as the scan saw it: its sha256 and size, or why it does not decode."""

    filename: str
    member: str
    data: bytes
    sha256: str
    size: tuple[int, int] | None
    reason: str | None


# Images decode-checked per call (TensorFlow's graph call is paid once per batch); with
# ordered_map's look-ahead, at most 4 * cores * _BATCH images are in flight.
_BATCH = 16


def _scan_batch(items: list[tuple[str, str, bytes]]) -> list[_Scanned]:
    checked = check_images([data for _, _, data in items])
    return [
        _Scanned(
            filename,
            member,
            data,
            hashlib.sha256(data).hexdigest(),
            None if isinstance(result, ValueError) else result,
            str(result) if isinstance(result, ValueError) else None,
        )
        for (filename, member, data), result in zip(items, checked, strict=True)
    ]


def scan(path: str | os.PathLike, *, keep_images: bool = False) -> ArchiveIndex:
    """Reads annotations, image hashes and sizes, and decode-checks every image, in one
    pass over the archive (the checks on one thread per core while it streams).

    Raises :class:`ArchiveError` if the archive is cut or corrupt, or lacks a member or an
    annotated image. Images that do not decode are listed in ``unusable``, not raised.
    ``keep_images`` keeps every image's bytes in ``images`` (about the archive's size).
    """
    archive = os.fspath(path)
    texts: dict[str, bytes] = {}
    sha256: dict[str, str] = {}
    size: dict[str, tuple[int, int]] = {}
    unusable: dict[str, Unusable] = {}
    members: dict[str, str] = {}
    images: dict[str, bytes] = {}
    seen: set[str] = set()

    def first_copies(outer: _TarStream, member: tarfile.TarInfo):
        for filename, member_name, data in _iter_inner(archive, outer, member):
            if filename in seen:  # iter_images also yields the first copy only
                log.warning("%s: %s: repeated file name, ignored", archive, member_name)
                continue
            seen.add(filename)
            yield filename, member_name, data

    with _open(archive) as raw:
        outer = _TarStream(raw, archive)
        for member in outer:
            name = posixpath.basename(member.name)
            if name == IMAGES_ARCHIVE:
                groups = batches(first_copies(outer, member), _BATCH)
                for image in itertools.chain.from_iterable(ordered_map(_scan_batch, groups)):
                    sha256[image.filename] = image.sha256
                    members[image.filename] = image.member
                    if image.size is None:
                        unusable[image.filename] = Unusable(archive, image.member, image.reason)
                    else:
                        size[image.filename] = image.size
                    if keep_images:
                        images[image.filename] = image.data
            elif name in (TRAINING_FILE, QUERY_FILE):
                texts[name] = outer.read(member)
        outer.finish()
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
    return ArchiveIndex(training, query, sha256, size, unusable, members, images)


def iter_images(path: str | os.PathLike, wanted: Collection[str]) -> Iterator[tuple[str, bytes]]:
    """Streams the archive once, yielding ``(filename, bytes)`` of the ``wanted`` images."""
    archive = os.fspath(path)
    wanted = set(wanted)
    found: set[str] = set()
    with _open(archive) as raw:
        outer = _TarStream(raw, archive)
        for member in outer:
            if posixpath.basename(member.name) == IMAGES_ARCHIVE:
                for filename, _, data in _iter_inner(archive, outer, member):
                    if filename in wanted and filename not in found:
                        found.add(filename)
                        yield filename, data
                break  # the annotation files after the images are not needed here
    if found != wanted:
        raise ArchiveError(f"{archive}: images not found: {sorted(wanted - found)[:5]}")


def extract_images(
    path: str | os.PathLike, wanted: Collection[str], target: str | os.PathLike
) -> list[str]:
    """Writes the ``wanted`` images of the archive to the folder ``target`` (created if
    needed) under their file names; returns the paths written, in archive order."""
    target = os.fspath(target)
    os.makedirs(target, exist_ok=True)
    written = []
    for filename, data in iter_images(path, wanted):
        written.append(os.path.join(target, filename))
        with open(written[-1], "wb") as out:
            out.write(data)
    return written
