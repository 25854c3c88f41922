"""The results a report reads: which CSV files, their rows as a stream, the manifest."""

from __future__ import annotations

import csv
import glob
import json
import os
from collections.abc import Iterator, Sequence
from typing import Any, NamedTuple

from logo_batch.result_csv import CSV_COLUMNS, LIST_SEPARATOR, local_output_files

MANIFEST_SUFFIX = ".manifest.json"
_USED = ("path", "label", "score", "top_labels", "error", "box", "mode")  # of CSV_COLUMNS
_GLOB_CHARS = ("*", "?", "[")


class Row(NamedTuple):
    """One row of a results CSV, as much of it as the report uses."""

    path: str  # escaped (:func:`logo_batch.result_csv.escape_path`)
    label: str
    score: float | None
    top_label: str  # the first of ``top_labels``: the best brand
    error: str
    box: str  # "x0 y0 x1 y1" or ""
    mode: str
    fingerprint: str  # "" in ``logo-batch predict`` CSVs

    @property
    def accepted(self) -> bool:
        """A brand was given: the label is the best brand (not ``none``/``unknown``)."""
        return not self.error and self.label != "" and self.label == self.top_label


def result_files(results: Sequence[str]) -> list[str]:
    """The CSV files of ``results``: each a results CSV name as the run's ``--output``
    (the file itself and its shards ``NAME-NNNNN-of-NNNNN.csv``) or a glob.

    Raises :class:`FileNotFoundError` naming what matched nothing.
    """
    found: list[str] = []
    for spec in results:
        if os.path.isdir(spec):
            raise FileNotFoundError(f"{spec}: a folder; give the results CSV (the run's --output)")
        files = local_output_files(spec)
        if not files and any(c in spec for c in _GLOB_CHARS):
            files = sorted(p for p in glob.glob(spec, recursive=True) if os.path.isfile(p))
        if not files:
            raise FileNotFoundError(
                f"{spec}: no such results (neither that CSV file, nor its shards "
                f"NAME-NNNNN-of-NNNNN.csv, nor files matching it as a glob)"
            )
        found += [f for f in files if f not in found]
    return found


def manifest_path(results: Sequence[str]) -> str | None:
    """``STEM.manifest.json`` beside the first of ``results`` (not a glob) that has one."""
    for spec in results:
        if any(c in spec for c in _GLOB_CHARS) and not os.path.exists(spec):
            continue
        candidate = os.path.splitext(spec)[0] + MANIFEST_SUFFIX
        if os.path.isfile(candidate):
            return candidate
    return None


def read_manifest(path: str | None) -> tuple[dict[str, Any], str]:
    """The manifest as a dict and a note on it ("" when read; never raises)."""
    if path is None:
        return {}, "no manifest beside the results"
    try:
        with open(path, encoding="utf-8") as handle:
            found = json.load(handle)
    except (OSError, ValueError) as error:
        return {}, f"{path}: unreadable manifest ({error})"
    if not isinstance(found, dict):
        return {}, f"{path}: not a JSON object"
    return found, ""


def manifest_min_score(manifest: dict[str, Any]) -> float | None:
    """``settings.min_score`` of a manifest, when it is a number."""
    settings = manifest.get("settings")
    value = settings.get("min_score") if isinstance(settings, dict) else None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def flatten(data: dict[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as ``(dotted.key, text)`` pairs; lists joined with ``, ``."""
    pairs: list[tuple[str, str]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            pairs += flatten(value, name + ".")
        elif isinstance(value, list):
            pairs.append((name, ", ".join(map(str, value))))
        else:
            pairs.append((name, "" if value is None else str(value)))
    return pairs


def _parse_score(text: str, where: str) -> float | None:
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{where}: score {text!r} is not a number") from None


def read_rows(path: str) -> Iterator[Row]:
    """The rows of one results CSV, streamed (with the Beam job's columns or
    ``logo-batch predict``'s). Raises :class:`ValueError` naming the file (and line)."""
    with open(path, encoding="utf-8", newline="") as handle:
        reader = csv.reader(handle)
        try:
            header = next(reader, [])
            missing = [c for c in CSV_COLUMNS if c not in header]
            if missing:
                raise ValueError(f"{path}: not a results CSV (no {', '.join(missing)} column(s))")
            at = [header.index(c) for c in _USED]
            fingerprint = header.index("fingerprint") if "fingerprint" in header else None
            width = len(header)
            for fields in reader:
                if len(fields) != width:
                    raise ValueError(
                        f"{path}:{reader.line_num}: {len(fields)} fields, the header has {width}"
                    )
                p, label, score, top, error, box, mode = (fields[i] for i in at)
                yield Row(
                    p,
                    label,
                    _parse_score(score, f"{path}:{reader.line_num}"),
                    top.split(LIST_SEPARATOR, 1)[0],
                    error,
                    box,
                    mode,
                    "" if fingerprint is None else fields[fingerprint],
                )
        except (csv.Error, UnicodeDecodeError) as error:
            raise ValueError(f"{path}:{reader.line_num}: not a readable CSV ({error})") from None


def read_all(paths: Sequence[str]) -> Iterator[Row]:
    """The rows of every file in turn."""
    for path in paths:
        yield from read_rows(path)
