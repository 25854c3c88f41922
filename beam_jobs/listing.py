"""The local listing of an ``--input``, in two steps, so that no process need hold it whole.

:func:`plan_local_listing` walks the folders and gives :class:`ListingUnit` s of at
most :data:`FILES_PER_UNIT` files each (no file names), and :func:`list_unit_entries`
lists a unit's files (the job spreads the units over its workers:
:class:`~beam_jobs.matching.MatchImageFiles`). :func:`list_local_entries` is both steps
in one process. Unreadable folders, broken links and special files become entries with
their reason; symlinked folders are followed without loops.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterator
from typing import NamedTuple

from apache_beam.io.filesystem import FileSystem

from beam_jobs.file_facts import FileEntry, local_entry
from beam_jobs.inputs import os_reason
from logo_batch.inference.preprocessing import is_image_path
from logo_batch.result_csv import escape_path, unescape_path

FILES_PER_UNIT = 10_000
"""Files a listing unit names at most (a unit is listed, then classified, by one worker)."""
PARTS_PER_UNIT = 1_000
"""Folders a listing unit names at most (folders of a few files are listed together)."""
FOLDER, FILE, ERROR = "folder", "file", "error"


class ListingPart(NamedTuple):
    """A piece of a local listing, as :func:`plan_local_listing` emits it in units.

    ``kind`` :data:`FOLDER`: the image files of the folder ``path`` whose names are in
    ``[lo, hi)`` (None: no bound; a folder of more than :data:`FILES_PER_UNIT` files is
    cut into several ranges); :data:`FILE`: the input is this one file; :data:`ERROR`:
    the folder ``path`` could not be read, ``error`` says why. Paths and names are
    escaped (:func:`~logo_batch.result_csv.escape_path`: Beam's coders take only UTF-8).
    """

    kind: str
    path: str
    lo: str | None = None
    hi: str | None = None
    error: str = ""


class ListingUnit(NamedTuple):
    """What one worker lists (:func:`list_unit_entries`): ``parts``, naming ``files``
    image files in all (counted when planned). ``skipped``: files the planning left out
    for their extension, ``(kind, count)`` pairs (a unit of no parts carries them to the
    run's manifest: :class:`~beam_jobs.matching.MatchImageFiles`)."""

    parts: tuple[ListingPart, ...]
    files: int
    skipped: tuple[tuple[str, int], ...] = ()

    @property
    def partition_weight(self) -> int:
        """What the job's Dask runner counts this unit as when it splits the units into
        partitions (:mod:`beam_jobs.dask_runner`): its files."""
        return max(1, self.files)


def _glob_depth(root: str, pattern: str) -> int | None:
    """How many folders below ``root`` a glob can reach (None: any depth, ``**``)."""
    rest = os.path.relpath(pattern, root).split(os.sep)
    if any("**" in part for part in rest):
        return None
    return len(rest) - 1


def _is_folder(entry: os.DirEntry) -> bool:
    try:
        return entry.is_dir()  # follows symbolic links
    except OSError:
        return False


def _wanted(path: str, regex: re.Pattern | None) -> bool:
    return is_image_path(path) and not (regex and not regex.match(path))


def plan_local_listing(
    root: str,
    pattern: str | None = None,
    files_per_unit: int = FILES_PER_UNIT,
    parts_per_unit: int = PARTS_PER_UNIT,
    skipped: Callable[[str], None] | None = None,
) -> Iterator[ListingUnit]:
    """The listing of ``root`` (and ``pattern``) as units to list elsewhere, each naming
    at most ``files_per_unit`` image files in at most ``parts_per_unit`` parts;
    :func:`list_unit_entries` of the units, in their order, is :func:`list_local_entries`.

    Symbolic links to folders are followed and each real folder (device, inode) is
    walked once, so a link to an ancestor cannot loop; with ``pattern`` (Beam glob
    syntax) only matching image files count, and folders only as deep as the pattern
    reaches. A folder that cannot be read is an :data:`ERROR` part. Memory: the names
    of one folder at a time and the real folders seen, never a file list: a folder's
    image files are counted here and listed by the unit's worker (a folder of more
    than ``files_per_unit`` files is cut into ranges of names, each listed by reading
    the folder again). Folders without image files are not in any unit.
    ``skipped``: called with each file (that ``pattern`` matches) left out for its
    extension (``.tiff``, ``.heic``, ``.txt``: not an image we classify).
    """
    if files_per_unit < 1 or parts_per_unit < 1:
        raise ValueError("files_per_unit and parts_per_unit must be at least 1")
    if not os.path.isdir(root):
        if os.path.lexists(root) and is_image_path(root):
            yield ListingUnit((ListingPart(FILE, escape_path(root)),), 1)
        elif os.path.lexists(root) and skipped is not None:
            skipped(root)
        return
    regex = re.compile(FileSystem.translate_pattern(pattern)) if pattern else None
    max_depth = _glob_depth(root, pattern) if pattern else None
    visited: set[tuple[int, int]] = set()
    stack = [(root, 0)]
    parts: list[ListingPart] = []
    files = 0
    while stack:
        folder, depth = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in visited:
                continue  # a link back to a folder already listed
            visited.add((info.st_dev, info.st_ino))
            names, subfolders = [], []
            with os.scandir(folder) as scan:
                for entry in scan:
                    if _is_folder(entry):
                        if max_depth is None or depth < max_depth:
                            subfolders.append(entry.name)
                    elif _wanted(entry.path, regex):
                        names.append(entry.name)
                    elif skipped is not None and not (regex and not regex.match(entry.path)):
                        skipped(entry.path)
        except OSError as error:
            reason = f"cannot read folder: {os_reason(error)}"
            parts.append(ListingPart(ERROR, escape_path(folder), error=reason))
            if len(parts) >= parts_per_unit:
                yield ListingUnit(tuple(parts), files)
                parts, files = [], 0
            continue
        names.sort()
        start, lo = 0, None
        while start < len(names):
            room = files_per_unit - files
            take = min(room, len(names) - start)
            end = start + take
            hi = names[end] if end < len(names) else None  # the next range's first name
            parts.append(
                ListingPart(
                    FOLDER,
                    escape_path(folder),
                    None if lo is None else escape_path(lo),
                    None if hi is None else escape_path(hi),
                )
            )
            files += take
            if files >= files_per_unit or len(parts) >= parts_per_unit:
                yield ListingUnit(tuple(parts), files)
                parts, files = [], 0
            start, lo = end, hi
        del names
        subfolders.sort()
        stack.extend((os.path.join(folder, name), depth + 1) for name in reversed(subfolders))
    if parts:
        yield ListingUnit(tuple(parts), files)


def list_unit_entries(unit: ListingUnit, pattern: str | None = None) -> Iterator[FileEntry]:
    """The :class:`FileEntry` of every file a unit of :func:`plan_local_listing` names
    (one stat each), a folder's in the order of their names. A folder that cannot be
    read now is an entry with the reason (once: from its range without a lower bound)."""
    regex = re.compile(FileSystem.translate_pattern(pattern)) if pattern else None
    for part in ListingUnit(*unit).parts:
        part = ListingPart(*part)
        if part.kind == ERROR:
            yield FileEntry(part.path, part.error)
            continue
        path = unescape_path(part.path)
        if part.kind == FILE:
            yield local_entry(path)
            continue
        lo = None if part.lo is None else unescape_path(part.lo)
        hi = None if part.hi is None else unescape_path(part.hi)
        try:
            with os.scandir(path) as scan:
                chosen = [
                    entry
                    for entry in scan
                    if (lo is None or entry.name >= lo) and (hi is None or entry.name < hi)
                ]
        except OSError as error:
            if lo is None:
                yield FileEntry(part.path, f"cannot read folder: {os_reason(error)}")
            continue
        chosen.sort(key=lambda entry: entry.name)
        for entry in chosen:
            if not _is_folder(entry) and _wanted(entry.path, regex):
                yield local_entry(entry.path)


def list_local_entries(root: str, pattern: str | None = None) -> Iterator[FileEntry]:
    """Every image file below the local folder ``root`` (or ``root`` itself, an image
    file) as a :class:`FileEntry`, in one process: :func:`list_unit_entries` of every
    unit :func:`plan_local_listing` gives (folders depth first, each folder's files by
    name before its subfolders).

    ``error`` is "" for a file to classify; size and modification time come from the
    one ``os.stat`` of each file (:func:`~beam_jobs.file_facts.local_entry`). Nothing
    is skipped silently: a folder that cannot be read is an entry with its reason
    (``cannot read folder: Permission denied``), a broken symbolic link with an image
    name is an entry with the reason, and so is a named pipe or device with an image
    name (reading it would block or never end). Symbolic links to folders are
    followed, each real folder once; with ``pattern`` (Beam glob syntax) only matching
    paths are kept, and only as deep as the pattern reaches.
    """
    for unit in plan_local_listing(root, pattern):
        yield from list_unit_entries(unit, pattern)
