"""Paths as Beam patterns matching only themselves, and their hashes (how the CSV writes
paths: :mod:`logo_batch.result_csv`)."""

from __future__ import annotations

import re
import zlib


def escape_glob(path: str) -> str:
    """``path`` as a Beam file pattern matching only itself: ``[`` ``*`` ``?`` in brackets."""
    return re.sub(r"([*?\[])", r"[\1]", path)


def stable_hash(text: str) -> int:
    """A hash equal in every worker process (``hash()`` of a str is salted per process)."""
    return zlib.crc32(text.encode("utf-8", "surrogateescape"))
