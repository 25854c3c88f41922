"""The job's own error: a run whose result must not be trusted."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from beam_jobs.summary import JobSummary


class ClassifyJobError(RuntimeError):
    """The job ran but its result must not be trusted (or there was nothing to do)."""

    def __init__(self, message: str, summary: JobSummary | None = None):
        super().__init__(message)
        self.summary = summary
