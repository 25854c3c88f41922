"""What the inputs mean.

An ``--input`` is a folder (a folder even with glob characters in its name) or a glob
(only an input that is not a folder globs); a ``--file-list`` is a text or CSV file
naming files (read by :mod:`beam_jobs.file_lists`). Remote inputs are listed by Beam's
``fileio.MatchFiles`` with :func:`input_pattern`, local ones by
:mod:`beam_jobs.listing`.
"""

from __future__ import annotations

import glob
import itertools
import os
from collections.abc import Sequence
from dataclasses import dataclass

from apache_beam.io.filesystems import FileSystems

from beam_jobs.errors import ClassifyJobError

_GLOB_CHARS = ("*", "?", "[")


def has_glob_chars(path: str) -> bool:
    return any(char in path for char in _GLOB_CHARS)


def input_pattern(input_path: str) -> str:
    """The file pattern for a remote ``--input``: a glob as given, a folder as ``folder/**``.

    Beam's filesystems translate ``*`` to "any characters but a separator" and ``**``
    to "any characters", and list folders recursively (local ``os.walk``, object
    stores by prefix), so ``folder/**`` is every file below the folder. The folder's
    own name is escaped: ``photos[2019]`` is that folder, not a character class.
    """
    if has_glob_chars(input_path):
        return input_path
    return glob.escape(input_path.rstrip("/\\")) + "/**"


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
        literal = glob.escape(input_path.rstrip("/\\")) + "/**"
        try:
            is_folder = bool(FileSystems.match([literal], [1])[0].metadata_list)
        except Exception:  # noqa: BLE001  (nothing there: then it is a glob)
            is_folder = False
        return InputSpec(input_path, False, pattern=literal if is_folder else input_path)
    return InputSpec(input_path, False, pattern=input_pattern(input_path))


@dataclass(frozen=True)
class FileListSpec:
    """A ``--file-list``: ``path`` (absolute when local) names one file per line or row."""

    path: str
    local: bool

    def describe(self) -> str:
        return f"{self.path} (file list)"


def resolve_file_list(list_path: str) -> FileListSpec:
    """Checks that a ``--file-list`` is a file (local or on any Beam file system).

    Raises :class:`ClassifyJobError` naming the list when it is missing or a folder.
    """
    if is_local(list_path):
        path = local_path(list_path)
        if os.path.isdir(path):
            raise ClassifyJobError(
                f"--file-list {list_path}: a folder, not a file list (give folders with --input)"
            )
        if not os.path.isfile(path):
            raise ClassifyJobError(f"--file-list {list_path}: no such file")
        return FileListSpec(path, True)
    try:
        found = FileSystems.exists(list_path)
    except Exception as error:  # noqa: BLE001  (each file system raises its own)
        raise ClassifyJobError(f"--file-list {list_path}: cannot read it: {error}") from error
    if not found:
        raise ClassifyJobError(f"--file-list {list_path}: no such file")
    return FileListSpec(list_path, False)


Spec = InputSpec | FileListSpec


def as_list(value: str | Sequence[str] | None) -> list[str]:
    """One input (a str) or several as a list."""
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def resolve_inputs(
    inputs: str | Sequence[str] | None, file_lists: str | Sequence[str] | None = ()
) -> list[Spec]:
    """Every ``--input`` (:func:`resolve_input`) then every ``--file-list``
    (:func:`resolve_file_list`); raises :class:`ClassifyJobError` when there are none."""
    specs: list[Spec] = [resolve_input(path) for path in as_list(inputs)]
    specs += [resolve_file_list(path) for path in as_list(file_lists)]
    if not specs:
        raise ClassifyJobError("nothing to classify: give --input and/or --file-list")
    return specs


def absolute_input(spec: InputSpec) -> str:
    """``spec`` as an input string that means the same in any working folder."""
    if spec.local:
        return spec.pattern or spec.root
    return spec.input


def fewer_than(specs: Sequence[Spec], limit: int) -> bool:
    """True when every input is local and together they hold fewer than ``limit`` entries
    (files below each folder, whatever their kind; lines of each file list): a bounded
    count, it stops at ``limit`` however large the folders are."""
    seen = 0
    for spec in specs:
        if not spec.local:
            return False
        if isinstance(spec, FileListSpec):
            with open(spec.path, "rb") as handle:
                seen += sum(1 for _ in itertools.islice(handle, limit))
        elif spec.root is not None and os.path.isfile(spec.root):
            seen += 1
        else:
            seen += _entries_up_to(spec.root or os.sep, limit - seen)
        if seen >= limit:
            return False
    return True


def _entries_up_to(root: str, limit: int) -> int:
    """Files below ``root``, counted one directory entry at a time up to ``limit``
    (``os.walk`` would list a folder of a million files whole before the first count)."""
    seen, folders = 0, [root]
    while folders and seen < limit:
        try:
            with os.scandir(folders.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        folders.append(entry.path)
                    else:
                        seen += 1
                        if seen >= limit:
                            break
        except OSError:
            continue  # unreadable: the listing names it
    return seen


def describe_inputs(specs: Sequence[Spec]) -> str:
    return " + ".join(spec.describe() for spec in specs)


def os_reason(error: OSError) -> str:
    return error.strerror or str(error)
