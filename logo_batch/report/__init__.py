"""``logo-batch report``: a bulk run's results CSV as one self-contained HTML page.

- :mod:`~logo_batch.report.reading`: the results' files, their rows as a stream, the
  run's manifest;
- :mod:`~logo_batch.report.sampling`: one pass over the rows into bounded structures
  (counts, a deterministic sample per brand, the borderline band, errors by reason);
- :mod:`~logo_batch.report.thumbnails`: thumbnails of the sampled photos, evidence box
  drawn, as JPEG data URIs (a missing or unreadable photo is a placeholder);
- :mod:`~logo_batch.report.html`: the page (inline CSS and SVG, no script, no URL);
- :mod:`~logo_batch.report.build`: the whole report, written atomically.

Pure Python, Pillow and the standard library: no TensorFlow, no Beam.
"""
