"""What ``--input`` means (a folder is a folder, only a non-folder globs) and the local listing.

Local inputs are listed by :func:`list_local_files` (unreadable folders, broken links and
special files become entries with their reason; symlinked folders are followed without
loops); remote ones by Beam's ``fileio.MatchFiles`` with :func:`input_pattern`.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass

from apache_beam.io.filesystem import FileSystem
from apache_beam.io.filesystems import FileSystems

from beam_jobs.errors import ClassifyJobError
from beam_jobs.paths import escape_path
from logo_batch.preprocessing import (
    is_image_path,
)

_GLOB_CHARS = ("*", "?", "[")


def has_glob_chars(path: str) -> bool:
    return any(char in path for char in _GLOB_CHARS)


def escape_glob(path: str) -> str:
    """``path`` as a Beam file pattern matching only itself: ``[`` ``*`` ``?`` in brackets."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def input_pattern(input_path: str) -> str:
    """The file pattern for a remote ``--input``: a glob as given, a folder as ``folder/**``.

    Beam's filesystems translate ``*`` to "any characters but a separator" and ``**``
    to "any characters", and list folders recursively (local ``os.walk``, object
    stores by prefix), so ``folder/**`` is every file below the folder. The folder's
    own name is escaped: ``photos[2019]`` is that folder, not a character class.
    """
    if has_glob_chars(input_path):
        return input_path
    return escape_glob(input_path.rstrip("/\\")) + "/**"


@dataclass(frozen=True)
class InputSpec:
    """What ``--input`` lists: a local folder or file, a local glob, or a remote pattern.

    ``root`` is the local folder (or file) to list, ``pattern`` the Beam-syntax glob
    the listed paths must match (None: every image below ``root``).
    """

    input: str
    local: bool
    root: str | None = None
    pattern: str | None = None

    def describe(self) -> str:
        if not self.local:
            return f"{self.pattern} (pattern)"
        if self.pattern:
            return f"{self.pattern} (glob)"
        return f"{self.root} ({'folder, recursive' if os.path.isdir(self.root) else 'file'})"


def is_local(path: str) -> bool:
    return FileSystems.get_scheme(path) in (None, "file")


def local_path(path: str) -> str:
    if path.startswith("file://"):
        path = path[len("file://") :]
    return os.path.abspath(path)


def glob_base(pattern: str) -> str:
    """The deepest folder of ``pattern`` above its first glob character."""
    parts = pattern.split(os.sep)
    fixed = []
    for part in parts[:-1]:
        if has_glob_chars(part):
            break
        fixed.append(part)
    return os.sep.join(fixed) or os.sep


def resolve_input(input_path: str) -> InputSpec:
    """Decides what ``--input`` means: a folder is a folder, whatever its name holds.

    Only an input that is not an existing folder (or file) and holds ``*``, ``?`` or
    ``[`` is a glob. Raises :class:`ClassifyJobError` for a local input that is
    neither.
    """
    if is_local(input_path):
        path = local_path(input_path)
        if os.path.isdir(path) or os.path.isfile(path):
            return InputSpec(input_path, True, root=path)
        if has_glob_chars(path):
            return InputSpec(input_path, True, root=glob_base(path), pattern=path)
        raise ClassifyJobError(f"--input {input_path}: no such folder or file")
    if has_glob_chars(input_path):
        literal = escape_glob(input_path.rstrip("/\\")) + "/**"
        try:
            is_folder = bool(FileSystems.match([literal], [1])[0].metadata_list)
        except Exception:  # noqa: BLE001  (nothing there: then it is a glob)
            is_folder = False
        return InputSpec(input_path, False, pattern=literal if is_folder else input_path)
    return InputSpec(input_path, False, pattern=input_pattern(input_path))


def os_reason(error: OSError) -> str:
    return error.strerror or str(error)


def _glob_depth(root: str, pattern: str) -> int | None:
    """How many folders below ``root`` a glob can reach (None: any depth, ``**``)."""
    rest = os.path.relpath(pattern, root).split(os.sep)
    if any("**" in part for part in rest):
        return None
    return len(rest) - 1


_FILE_KINDS = {
    stat.S_IFIFO: "a named pipe",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _file_problem(path: str) -> str:
    """Why a listed image path cannot be read ("" when it is a regular file)."""
    try:
        info = os.stat(path)  # follows symbolic links
    except FileNotFoundError:
        if os.path.islink(path):
            return f"broken symbolic link (to {escape_path(os.readlink(path))})"
        return ""  # vanished since listed: reading it reports that
    except OSError as error:  # a link loop, a folder we may not search, ...
        return f"cannot read file: {os_reason(error)}"
    if stat.S_ISREG(info.st_mode):
        return ""
    return f"not a regular file ({_FILE_KINDS.get(stat.S_IFMT(info.st_mode), 'special file')})"


def list_local_files(root: str, pattern: str | None = None) -> Iterator[tuple[str, str]]:
    """Every image file below the local folder ``root`` as ``(escaped path, error)``.

    ``error`` is "" for a file to classify. Nothing is skipped silently: a folder that
    cannot be read is an entry with its reason (``cannot read folder: Permission
    denied``), a broken symbolic link with an image name is an entry with the
    reason, and so is a named pipe or device with an image name (reading it would
    block or never end). Symbolic links to folders are followed; each real folder
    (device, inode) is listed once, so a link to an ancestor cannot loop. With
    ``pattern`` (Beam glob syntax) only matching paths are kept, and only as deep as
    the pattern reaches.
    """
    if not os.path.isdir(root):
        if os.path.lexists(root) and is_image_path(root):
            yield escape_path(root), _file_problem(root)
        return
    regex = re.compile(FileSystem.translate_pattern(pattern)) if pattern else None
    max_depth = _glob_depth(root, pattern) if pattern else None
    visited: set[tuple[int, int]] = set()
    stack = [(root, 0)]
    while stack:
        folder, depth = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in visited:
                continue  # a link back to a folder already listed
            visited.add((info.st_dev, info.st_ino))
            with os.scandir(folder) as scan:
                entries = sorted(scan, key=lambda entry: entry.name)
        except OSError as error:
            yield escape_path(folder), f"cannot read folder: {os_reason(error)}"
            continue
        subfolders = []
        for entry in entries:
            try:
                is_folder = entry.is_dir()  # follows symbolic links
            except OSError:
                is_folder = False
            if is_folder:
                if max_depth is None or depth < max_depth:
                    subfolders.append(entry.path)
                continue
            if not is_image_path(entry.path) or (regex and not regex.match(entry.path)):
                continue
            yield escape_path(entry.path), _file_problem(entry.path)
        stack.extend((path, depth + 1) for path in reversed(subfolders))
