"""What a row records of its file besides the classification: size and modification time.

Every row of the job's CSV ends with ``size`` (bytes), ``modified`` (the file's
modification time, ISO 8601 UTC to the microsecond) and ``fingerprint`` (the model and
settings that made the row, :mod:`beam_jobs.fingerprint`), so a later run with
``--previous`` can tell which rows still hold (:mod:`beam_jobs.previous`).

The facts are taken when the file is listed, before it is read: a file that changes
between the two is recorded with its older facts and is classified again next time.
They travel with the file (its :class:`FileEntry` is the key of its model input through
``RunInference``) and are added to its row by :class:`~beam_jobs.transforms.FormatRows`:
no join by path.
"""

from __future__ import annotations

import datetime
import glob
import hashlib
import os
from typing import NamedTuple

from apache_beam.io.filesystem import CompressionTypes
from apache_beam.io.filesystems import FileSystems

from logo_batch.inference.file_access import not_regular_reason
from logo_batch.result_csv import escape_path, unescape_path


class FileEntry(NamedTuple):
    """A file to classify: its escaped path (:func:`~logo_batch.result_csv.escape_path`), why it
    cannot be read ("" when it can), its size and modification time (when known), and
    the SHA-256 of its bytes (runs with ``--checksum``; "" when not taken)."""

    path: str
    error: str = ""
    size: int | None = None
    modified: str = ""
    sha256: str = ""


_HASH_CHUNK = 1 << 20


def file_sha256(path: str) -> str:
    """The SHA-256 of the bytes of the file at the escaped ``path`` (local or any Beam
    file system), read in chunks (memory does not grow with the file); raises
    ``OSError`` (or a file system's error) when it cannot be read."""
    raw = unescape_path(path)
    digest = hashlib.sha256()
    if FileSystems.get_scheme(raw) is None:
        handle = open(raw, "rb")  # noqa: SIM115  (closed below)
    else:
        handle = FileSystems.open(raw, compression_type=CompressionTypes.UNCOMPRESSED)
    with handle:
        while chunk := handle.read(_HASH_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def format_modified(microseconds: int) -> str:
    """A modification time (microseconds since the epoch) as ``2024-05-01T12:00:00.123456Z``."""
    seconds, micros = divmod(int(microseconds), 1_000_000)
    moment = datetime.datetime.fromtimestamp(seconds, tz=datetime.timezone.utc)
    return moment.replace(microsecond=micros).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def modified_from_seconds(seconds: float | None) -> str:
    """:func:`format_modified` of a file system's float seconds ("" when unknown)."""
    return format_modified(round(seconds * 1_000_000)) if seconds else ""


def local_entry(path: str, missing: str = "") -> FileEntry:
    """The entry of the local file ``path`` (an OS path, any bytes): one ``os.stat``.

    A broken symbolic link, a folder, a pipe or a device is an entry with the reason
    (reading a pipe would block). A file that does not exist gets ``missing`` as its
    error ("" while listing a folder: it vanished since it was listed, and reading it
    says so).
    """
    escaped = escape_path(path)
    try:
        info = os.stat(path)  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(path):
            target = escape_path(os.readlink(path))
            return FileEntry(escaped, f"broken symbolic link (to {target})")
        return FileEntry(escaped, missing)
    except OSError as error:  # a link loop, a folder we may not search, a name too long
        return FileEntry(escaped, f"cannot read file: {error.strerror or error}")
    reason = not_regular_reason(info.st_mode)
    if reason:
        return FileEntry(escaped, reason)
    return FileEntry(escaped, "", info.st_size, format_modified(info.st_mtime_ns // 1000))


def remote_entry(path: str, missing: str = "no such file") -> FileEntry:
    """The entry of a file on a remote Beam file system (``gs://``, ``s3://``, ...)."""
    try:
        found = FileSystems.match([glob.escape(path)], [1])[0].metadata_list
    except Exception as error:  # noqa: BLE001  (each file system raises its own)
        return FileEntry(path, f"cannot read file: {error}")
    if not found:
        return FileEntry(path, missing)
    return metadata_entry(found[0])


def metadata_entry(metadata) -> FileEntry:
    """The entry of a file Beam matched (``FileMetadata``: path, size, last update)."""
    modified = modified_from_seconds(getattr(metadata, "last_updated_in_seconds", None))
    return FileEntry(escape_path(metadata.path), "", metadata.size_in_bytes, modified)


def with_checksum(entry: FileEntry) -> FileEntry:
    """``entry`` with the SHA-256 of its file (:func:`file_sha256`); a file that cannot
    be read keeps none (reading it to classify it names the reason in its row)."""
    if entry.error or entry.sha256:
        return entry
    try:
        return entry._replace(sha256=file_sha256(entry.path))
    except Exception:  # noqa: BLE001  (any file system's error)
        return entry


def entry_of(path: str, local: bool, missing: str) -> FileEntry:
    """The entry of an escaped ``path`` named in a file list, local or remote."""
    raw = unescape_path(path)
    return local_entry(raw, missing) if local else remote_entry(raw, missing)


def with_facts(row: dict[str, str], entry: FileEntry, fingerprint: str) -> dict[str, str]:
    """``row`` with the columns :data:`~logo_batch.result_csv.FACT_COLUMNS` filled from
    ``entry``."""
    size = "" if entry.size is None else str(entry.size)
    facts = {"size": size, "modified": entry.modified, "fingerprint": fingerprint}
    return {**row, **facts, "sha256": entry.sha256}
