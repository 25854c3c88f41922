"""One pass over a run's rows into structures of bounded size.

Whatever the number of rows, the summary holds: a count per label (at most
:data:`MAX_LABELS` labels), the ``samples_per_brand`` rows of each brand with the
smallest hash of their path (:func:`path_key`: the same rows from the same results,
in any order or sharding), the ``band_size`` rows on each side of the threshold
closest to it, and per error reason (at most :data:`MAX_REASONS`) a count and
``error_paths`` paths. Each bounded set holds at most twice its size while it reads
(:class:`Smallest`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from operator import itemgetter
from typing import Any

from logo_batch.report.reading import Row

SAMPLES_PER_BRAND = 8
BAND_SIZE = 8
ERROR_PATHS = 10
MAX_LABELS = 1000
"""More distinct labels than this is not a classifier's output: an error."""
MAX_REASONS = 100
"""Error reasons counted apart; the rows of any further reason are counted together."""
MAX_NAMED = 20
"""Modes and fingerprints counted by name; any further ones together."""
OTHER = "(others)"
WHOLE = "whole"  # the mode of rows classified through windows (logo_batch.inference.predict.WHOLE)


def path_key(path: str) -> int:
    """A 64-bit hash of a path, the same in every process and run."""
    digest = hashlib.blake2b(path.encode("utf-8", "surrogatepass"), digest_size=8).digest()
    return int.from_bytes(digest, "big")


class Smallest:
    """The ``size`` items with the smallest keys seen (keys unique and comparable);
    holds at most ``2 * size`` items at any time."""

    def __init__(self, size: int):
        self.size = max(0, size)
        self._items: list[tuple[Any, Any]] = []
        self._cutoff: Any = None

    def add(self, key: Any, item: Any) -> None:
        if self.size == 0 or (self._cutoff is not None and key >= self._cutoff):
            return
        self._items.append((key, item))
        if len(self._items) >= 2 * self.size:
            self._items.sort(key=itemgetter(0))
            del self._items[self.size :]
            self._cutoff = self._items[-1][0]

    def __len__(self) -> int:
        return len(self._items)

    def items(self) -> list[Any]:
        """The kept items, smallest key first."""
        return [item for _, item in sorted(self._items, key=itemgetter(0))[: self.size]]


def _bump(counts: dict[str, int], key: str, limit: int) -> str:
    """Counts ``key`` (as :data:`OTHER` once ``limit`` others are counted); the key used."""
    if key not in counts and len(counts) >= limit:
        key = OTHER
    counts[key] = counts.get(key, 0) + 1
    return key


@dataclass
class ErrorGroup:
    """The rows failed for one reason: how many, and some of their paths."""

    count: int = 0
    paths: Smallest = field(default_factory=lambda: Smallest(ERROR_PATHS))


@dataclass
class Summary:
    """What the report shows of a run's rows (see the module's notes)."""

    samples_per_brand: int = SAMPLES_PER_BRAND
    band_size: int = BAND_SIZE
    error_paths: int = ERROR_PATHS
    threshold: float | None = None
    """Given: the band is split by ``score >= threshold``; else by accepted or not."""
    rows: int = 0
    accepted: dict[str, int] = field(default_factory=dict)  # brand -> rows
    rejected: dict[str, int] = field(default_factory=dict)  # none, unknown -> rows
    errors: dict[str, ErrorGroup] = field(default_factory=dict)  # reason -> group
    error_rows: int = 0
    modes: dict[str, int] = field(default_factory=dict)
    fingerprints: dict[str, int] = field(default_factory=dict)
    samples: dict[str, Smallest] = field(default_factory=dict)  # brand -> sample
    above: Smallest = field(init=False)  # closest to the threshold from above
    below: Smallest = field(init=False)  # closest from below (the highest rejected)
    score_range: tuple[float, float] | None = None
    lowest_accepted_whole: float | None = None

    def __post_init__(self) -> None:
        self.above = Smallest(self.band_size)
        self.below = Smallest(self.band_size)

    def add(self, row: Row) -> None:
        """Counts one row and keeps it where it belongs to a sample or the band."""
        self.rows += 1
        _bump(self.modes, row.mode or "(none)", MAX_NAMED)
        if row.fingerprint:
            _bump(self.fingerprints, row.fingerprint, MAX_NAMED)
        if row.error:
            self.error_rows += 1
            reason = row.error if row.error in self.errors else None
            if reason is None:
                reason = OTHER if len(self.errors) >= MAX_REASONS else row.error
                self.errors.setdefault(reason, ErrorGroup(paths=Smallest(self.error_paths)))
            group = self.errors[reason]
            group.count += 1
            group.paths.add((path_key(row.path), row.path), row.path)
            return
        label = row.label or "(no label)"
        counts = self.accepted if row.accepted else self.rejected
        if label not in counts and len(self.accepted) + len(self.rejected) >= MAX_LABELS:
            raise ValueError(f"more than {MAX_LABELS} distinct labels: not a classifier's results")
        counts[label] = counts.get(label, 0) + 1
        key = path_key(row.path)
        if row.accepted:
            sample = self.samples.get(label)
            if sample is None:
                sample = self.samples[label] = Smallest(self.samples_per_brand)
            sample.add((key, row.path), row)
        score = row.score
        if score is None:
            return
        low, high = self.score_range or (score, score)
        self.score_range = (min(low, score), max(high, score))
        if row.accepted and row.mode == WHOLE:
            lowest = self.lowest_accepted_whole
            self.lowest_accepted_whole = score if lowest is None else min(lowest, score)
        above = row.accepted if self.threshold is None else score >= self.threshold
        if above:
            self.above.add((score, key, row.path), row)
        else:
            self.below.add((-score, key, row.path), row)

    def labels(self) -> list[tuple[str, int, bool]]:
        """``(label, rows, accepted)``: brands by count (then name), then the rejected."""
        brands = sorted(self.accepted.items(), key=lambda kv: (-kv[1], kv[0]))
        others = sorted(self.rejected.items(), key=lambda kv: (-kv[1], kv[0]))
        return [(k, n, True) for k, n in brands] + [(k, n, False) for k, n in others]

    def sampled_rows(self) -> list[Row]:
        """Every row the report shows a photo of (each path once)."""
        rows = {}
        for sample in [*self.samples.values(), self.above, self.below]:
            for row in sample.items():
                rows.setdefault(row.path, row)
        return list(rows.values())

    def facts(self) -> list[tuple[str, str]]:
        """What the rows themselves say about the run."""

        def named(counts: dict[str, int]) -> str:
            return ", ".join(f"{k} ({n:,})" for k, n in sorted(counts.items())) or "-"

        low, high = self.score_range or (None, None)
        low_high = "-" if low is None else f"{low:.4f} to {high:.4f}"
        lowest = self.lowest_accepted_whole
        return [
            ("rows", f"{self.rows:,}"),
            ("classified", f"{self.rows - self.error_rows:,}"),
            ("accepted (a brand)", f"{sum(self.accepted.values()):,}"),
            ("rejected (none, unknown)", f"{sum(self.rejected.values()):,}"),
            ("errors", f"{self.error_rows:,}"),
            ("modes", named(self.modes)),
            ("fingerprints", named(self.fingerprints)),
            ("scores", low_high),
            ("lowest accepted score (whole mode)", "-" if lowest is None else f"{lowest:.4f}"),
        ]


def summarize(rows: Iterable[Row], **options: Any) -> Summary:
    """One pass over ``rows`` (options: :class:`Summary`'s first four fields)."""
    summary = Summary(**options)
    for row in rows:
        summary.add(row)
    return summary
