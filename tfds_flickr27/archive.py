"""Streaming reads of the FlickrLogos-27 archive (outer tar.gz holding an images tar.gz).

Nothing is extracted to disk. The annotation files come after the images in the stream,
so :func:`scan` reads the whole archive once (annotations, image sha256, sizes, and a full
decode of every image) and :func:`iter_images` streams it again for the images a split
needs. :func:`check` then applies the builder's policy to what the scan found: images
that do not decode and boxes outside their image are skipped by name, counted, and fail
the build when they are more than a small fraction.

Every read error (a cut or corrupt gzip or tar stream, at either level) is raised as
:class:`ArchiveError` naming the archive and the member being read.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import logging
import os
import posixpath
import tarfile
import zlib
from collections.abc import Collection, Iterator

from PIL import Image, UnidentifiedImageError

from tfds_flickr27 import annotations as ann

ROOT = "flickr_logos_27_dataset"
IMAGES_ARCHIVE = f"{ROOT}_images.tar.gz"
TRAINING_FILE = f"{ROOT}_training_set_annotation.txt"
QUERY_FILE = f"{ROOT}_query_set_annotation.txt"

log = logging.getLogger(__name__)

# What a cut or corrupt gzip/tar stream raises (EOFError, BadGzipFile is an OSError).
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


def _open(path: str | os.PathLike) -> io.BufferedReader:
    from etils import epath  # local paths and the file systems TFDS supports

    return epath.Path(path).open("rb")


class _TarStream:
    """A streamed tar.gz whose read errors name ``where`` and the current member.

    The gzip layer is Python's :class:`gzip.GzipFile`, which checks the end-of-stream
    marker, CRC and length; :meth:`finish` reads to that end, so an archive cut anywhere,
    even between two members or inside the gzip trailer, fails instead of looking shorter.
    """

    def __init__(self, fileobj, where: str):
        self.where = where
        self.last: str | None = None
        self.gzip = gzip.GzipFile(fileobj=fileobj, mode="rb")
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
    inner = _TarStream(outer.tar.extractfile(member), f"{archive}: member {member.name}")
    for image in inner:
        if image.isfile() and image.name.lower().endswith(".jpg"):
            yield posixpath.basename(image.name), image.name, inner.read(image)
    inner.finish()


def check_image(data: bytes) -> tuple[int, int]:
    """``(width, height)`` of a JPEG that decodes fully; raises ``ValueError`` with why not.

    Decoded twice: by Pillow (what the ``crops`` config crops with) and by TensorFlow's
    JPEG decoder (what TFDS and the trainer read the ``images`` config with). Either
    failing, or the two disagreeing on the size, makes the image unusable.
    """
    import tensorflow as tf

    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format != "JPEG":
                raise ValueError(f"not a JPEG but {image.format}")
            image.load()  # raises on truncated data (Image.LOAD_TRUNCATED_IMAGES is off)
            size = image.size
    except UnidentifiedImageError:
        raise ValueError("cannot identify image data (not a JPEG)") from None
    except (OSError, SyntaxError, EOFError, Image.DecompressionBombError) as error:
        raise ValueError(f"Pillow cannot decode it: {error}") from None
    try:
        pixels = tf.io.decode_jpeg(data, channels=3, dct_method="INTEGER_ACCURATE")
    except tf.errors.OpError as error:
        raise ValueError(f"TensorFlow cannot decode it: {error.message.strip()}") from None
    if tuple(pixels.shape[:2]) != (size[1], size[0]):
        raise ValueError(f"decoders disagree on the size: {size} vs {pixels.shape}")
    return size


def scan(path: str | os.PathLike) -> ArchiveIndex:
    """Reads annotations, image hashes and sizes, and decodes every image once.

    Raises :class:`ArchiveError` if the archive is cut or corrupt, or lacks a member or an
    annotated image. Images that do not decode are listed in ``unusable``, not raised.
    """
    archive = os.fspath(path)
    texts: dict[str, bytes] = {}
    sha256: dict[str, str] = {}
    size: dict[str, tuple[int, int]] = {}
    unusable: dict[str, Unusable] = {}
    with _open(archive) as raw:
        outer = _TarStream(raw, archive)
        for member in outer:
            name = posixpath.basename(member.name)
            if name == IMAGES_ARCHIVE:
                for filename, member_name, data in _iter_inner(archive, outer, member):
                    if filename in sha256:  # iter_images also yields the first copy only
                        log.warning("%s: %s: repeated file name, ignored", archive, member_name)
                        continue
                    sha256[filename] = hashlib.sha256(data).hexdigest()
                    try:
                        size[filename] = check_image(data)
                    except ValueError as error:
                        unusable[filename] = Unusable(archive, member_name, str(error))
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
    return ArchiveIndex(training, query, sha256, size, unusable)


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
