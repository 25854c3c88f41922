"""The results CSV as ``logo-batch predict`` and the Beam job write it and the report
reads it: its columns, its paths (valid UTF-8 whatever bytes a name holds) and its
shard names. Pure Python: no TensorFlow, no Beam.
"""

from __future__ import annotations

import os
import re

CSV_COLUMNS = ("path", "label", "score", "top_labels", "top_scores", "error", "box", "mode")
"""The columns of ``logo-batch predict --format csv``."""
FACT_COLUMNS = ("size", "modified", "fingerprint", "sha256")
ROW_COLUMNS = (*CSV_COLUMNS, *FACT_COLUMNS)
"""The Beam job's CSV columns: ``logo-batch predict``'s, then the file facts (``sha256``:
the file's content hash, written by runs with ``--checksum``, else empty)."""
EARLIER_ROW_COLUMNS = ROW_COLUMNS[:-1]
"""The Beam job's columns before ``sha256``: outputs of earlier versions, still reused."""
LIST_SEPARATOR = ";"
"""Between the items of ``top_labels`` and ``top_scores``."""


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


def shard_pattern(output: str) -> re.Pattern:
    """The file names of ``output``'s shards, ``STEM-NNNNN-of-NNNNN.EXT`` (a name
    without its folder must match in full)."""
    stem, ext = os.path.splitext(output)
    return re.compile(
        re.escape(os.path.basename(stem)) + r"-\d{5}-of-\d{5}" + re.escape(ext or ".csv")
    )


def local_output_files(output: str) -> list[str]:
    """The CSV files a run of local ``output`` wrote, sorted: ``output`` itself and
    its shards (:func:`shard_pattern`); none when its folder cannot be read."""
    shard = shard_pattern(output)
    folder = os.path.dirname(output)
    try:
        names = os.listdir(folder or ".")
    except OSError:
        return []
    found = [os.path.join(folder, n) for n in names if shard.fullmatch(n)]
    return sorted(found + ([output] if os.path.isfile(output) else []))
