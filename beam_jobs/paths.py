"""Paths as the CSV writes them (valid UTF-8 whatever bytes a name holds), and their hashes.

A path as a Beam file pattern matching only itself is ``glob.escape(path)``: Beam's
patterns take ``*``, ``?`` and ``[...]`` as the standard library's do."""

from __future__ import annotations

import re
import zlib


def escape_path(path: str) -> str:
    """A file path as written in the CSV: valid UTF-8 whatever bytes the name holds.

    A byte that is not part of valid UTF-8 is written ``\\xNN`` (two lowercase hex
    digits) and a backslash is written ``\\\\``; everything else is as is. The
    escaping is reversible: :func:`path_bytes` gives the original bytes back.
    Local paths come from the OS as ``str`` with undecodable bytes as surrogates
    (PEP 383), which no UTF-8 encoder (Beam's coders, the CSV writer) accepts.
    """
    raw = path.encode("utf-8", "surrogateescape")
    return raw.replace(b"\\", b"\\\\").decode("utf-8", "backslashreplace")


_ESCAPE = re.compile(rb"\\(\\|x[0-9a-fA-F]{2})")


def path_bytes(escaped: str) -> bytes:
    """The original bytes of a path written by :func:`escape_path` (a CSV ``path``)."""

    def unescape(match: re.Match) -> bytes:
        code = match.group(1)
        return b"\\" if code == b"\\" else bytes([int(code[1:], 16)])

    return _ESCAPE.sub(unescape, escaped.encode("utf-8"))


def unescape_path(escaped: str) -> str:
    """The path to open for a CSV ``path`` (undecodable bytes as surrogates)."""
    return path_bytes(escaped).decode("utf-8", "surrogateescape")


def stable_hash(text: str) -> int:
    """A hash equal in every worker process (``hash()`` of a str is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogateescape"))
