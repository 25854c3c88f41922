"""Counting a PCollection without gathering its elements anywhere.

Beam's ``Count.Globally`` is a ``CombinePerKey``; a portable runner lifts the combiner
(each worker counts before the shuffle), but Beam's Dask runner, and the job's own
(:mod:`beam_jobs.dask_runner`), translate it as written: a GroupByKey of every element
under one key, so one worker holds every file's entry (about 0.7 KB a file). Counting
per bundle first makes the shuffle one integer per bundle on every runner.
"""

from __future__ import annotations

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows


class _BundleCountFn(beam.DoFn):
    def start_bundle(self):
        self._count = 0

    def process(self, element):
        self._count += 1
        return ()

    def finish_bundle(self):
        if self._count:
            yield GlobalWindows.windowed_value(self._count)


class CountGlobally(beam.PTransform):
    """The number of elements, as one element (0 for an empty PCollection): each bundle
    counts its own, and only those counts are summed across workers."""

    def expand(self, pcoll):
        return (
            pcoll
            | "CountBundles" >> beam.ParDo(_BundleCountFn())
            | "Sum" >> beam.CombineGlobally(sum)
        )
