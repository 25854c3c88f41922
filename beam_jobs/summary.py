"""What a run of the job did: counts, outputs, time, and the lines that report them."""

from __future__ import annotations

from dataclasses import dataclass, field

METRICS_NAMESPACE = "logo_batch"
"""Namespace of the job's Beam counters (also what a runner's own UI shows)."""

COUNTER_ORDER = (
    "files_matched",
    "files_skipped",
    "listing_errors",
    "duplicate_entries",
    "files_reused",
    "files_new",
    "files_changed",
    "files_retried",
    "previous_rows_removed",
    "images_read",
    "images_failed_to_decode",
    "images_classified",
    "images_failed",
    "model_loads",
)


@dataclass
class JobSummary:
    matched: int
    written: int
    failed: int
    outputs: list[str]
    seconds: float
    metrics: dict[str, int] = field(default_factory=dict)
    mode: str = ""
    reused: int = 0  # rows carried over from --previous
    reuse_note: str = ""  # what --previous gave (beam_jobs.previous.reuse_note)
    engines: dict[str, int] = field(default_factory=dict)  # files classified per engine
    # Files the listing left out for their extension (.tiff, .heic, .txt: not an image we
    # classify), by extension (none: no extension; other: an odd one); counted in the
    # pipeline's data (beam_jobs.matching.Matched), whatever the runner reports.
    skipped: dict[str, int] = field(default_factory=dict)

    @property
    def classified(self) -> int:
        """Files classified by this run (not reused ones)."""
        return self.written - self.failed - self.reused

    @property
    def error_fraction(self) -> float:
        return self.failed / self.matched if self.matched else 0.0

    def line(self) -> str:
        done = self.matched - self.reused
        rate = done / self.seconds if self.seconds > 0 else float("nan")
        where = self.outputs[0] if len(self.outputs) == 1 else f"{len(self.outputs)} shards"
        return (
            f"classify: {self.matched} image files matched, {self.classified} classified, "
            f"{self.failed} failed ({self.error_fraction:.1%}); {self.written} rows written "
            f"to {where} in {self.seconds:.1f} s ({rate:.1f} images/s)"
            + (f"; {self.reuse_note}" if self.reuse_note else "")
            + self._skipped_note()
            + (f"; {self.mode} mode" if self.mode else "")
            + (
                "; engine " + ", ".join(f"{name} ({n} files)" for name, n in self.engines.items())
                if self.engines
                else ""
            )
        )

    def _skipped_note(self) -> str:
        total = sum(self.skipped.values())
        if not total:
            return ""
        kinds = ", ".join(
            f"{'.' + kind if kind not in ('none', 'other') else kind} {n}"
            for kind, n in self.skipped.items()
        )
        return f"; {total} other files skipped (not images by extension: {kinds})"

    def counters_line(self) -> str:
        """The job's Beam counters (as the runner reported them)."""
        if not self.metrics:
            return "classify counters: not reported by this runner"
        names = [name for name in COUNTER_ORDER if name in self.metrics]
        names += sorted(set(self.metrics) - set(names))
        return "classify counters: " + " ".join(f"{n}={self.metrics[n]}" for n in names)
