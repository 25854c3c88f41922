"""What ``--output`` may replace: only an earlier output of this job, never an input.

A run writes its CSV file(s) and its manifest at ``--output`` and removes the shards an
earlier run of that output wrote (:mod:`beam_jobs.output_files`); :func:`check_replaced`
refuses, before any work, a run where one of those paths is

- an input: a file an ``--input`` folder lists (below the folder, with an image
  extension; a file reached only through a symbolic link to another folder is not
  looked for), a file an ``--input`` glob matches, the ``--input`` file itself;
- a ``--file-list`` itself, or a file of the ``--previous`` output (unless that output
  is ``--output`` itself: a rerun onto its own earlier output reuses and replaces it);
- a file of the model bundle;
- an existing file that is not an output of this job: a CSV whose first row is not the
  job's header (:data:`~logo_batch.result_csv.ROW_COLUMNS`, or an older version's
  columns, or the :data:`~logo_batch.result_csv.CSV_COLUMNS` of ``logo-batch predict
  --format csv``), or a manifest that is not a run manifest.

The last rule also keeps any file a ``--file-list`` names: a listed file at the output
path is either such a CSV (an earlier output) or refused. Every check is cheap: path
arithmetic and the first line of the few files at the output path, no listing.
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
from collections.abc import Sequence

from apache_beam.io.filesystem import CompressionTypes, FileSystem
from apache_beam.io.filesystems import FileSystems

from beam_jobs.errors import ClassifyJobError
from beam_jobs.inputs import FileListSpec, InputSpec, Spec, is_local, local_path
from beam_jobs.output_files import output_paths, previous_outputs
from beam_jobs.run_manifest import MANIFEST_SUFFIX, run_manifest_path
from logo_batch.inference.preprocessing import is_image_path
from logo_batch.result_csv import CSV_COLUMNS, EARLIER_ROW_COLUMNS, ROW_COLUMNS

_FIRST_LINE_BYTES = 1 << 16  # a header is a few hundred bytes
_MANIFEST_BYTES = 1 << 24  # a run's manifest is a few KB


def replaced_paths(output: str, num_shards: int) -> list[str]:
    """Every path a run of ``output`` writes or removes: its CSV file(s) (with
    ``--num-shards auto``, ``output`` stands for shards not named yet: they share its
    folder and extension), an earlier run's shards of it, its manifest."""
    paths = [output, *output_paths(output, num_shards), *previous_outputs(output)]
    paths.append(run_manifest_path(output))
    return list(dict.fromkeys(paths))


def _forms(path: str) -> set[str]:
    """The names a local path goes by: as given (its folder resolved) and fully resolved
    (a symbolic link followed)."""
    folder, name = os.path.split(os.path.abspath(path))
    return {os.path.join(os.path.realpath(folder), name), os.path.realpath(path)}


def _same(path: str, other: str) -> bool:
    if is_local(path) and is_local(other):
        return bool(_forms(local_path(path)) & _forms(local_path(other)))
    return path.rstrip("/") == other.rstrip("/")


def _inside(path: str, folder: str) -> bool:
    """Whether ``path`` is ``folder`` or below it (local: folders resolved)."""
    if is_local(path) and is_local(folder):
        root = os.path.realpath(local_path(folder))
        return any(
            form == root or form.startswith(root.rstrip(os.sep) + os.sep)
            for form in _forms(local_path(path))
        )
    return path.startswith(folder.rstrip("/") + "/")


def _input_holding(path: str, spec: InputSpec) -> bool:
    """Whether ``spec`` lists (or would list) the file ``path`` (by any of its names)."""
    forms = (_forms(local_path(path)) | {local_path(path)}) if is_local(path) else {path}
    if spec.local and spec.pattern is None:  # a folder or one file
        if os.path.isdir(spec.root):
            return any(is_image_path(form) and _inside(form, spec.root) for form in forms)
        return _same(path, spec.root)
    regex = re.compile(FileSystem.translate_pattern(spec.pattern))
    return any(is_image_path(form) and regex.match(form) for form in forms)


def _first_line(path: str, limit: int) -> bytes:
    with FileSystems.open(path, compression_type=CompressionTypes.UNCOMPRESSED) as handle:
        return handle.read(limit)


def _ours(path: str) -> bool:
    """Whether the existing file ``path`` is an output of this job (its header, or a
    run manifest)."""
    try:
        if path.endswith(MANIFEST_SUFFIX):
            content = json.loads(_first_line(path, _MANIFEST_BYTES).decode("utf-8"))
            return isinstance(content, dict) and content.get("job") == "logo-batch classify"
        head = _first_line(path, _FIRST_LINE_BYTES).decode("utf-8")
        header = tuple(next(csv.reader(io.StringIO(head, newline="")), ()))
    except (OSError, ValueError, csv.Error):  # unreadable, not UTF-8, not JSON
        return False
    return header in (ROW_COLUMNS, EARLIER_ROW_COLUMNS, CSV_COLUMNS)


def _exists(path: str) -> bool:
    if is_local(path):
        return os.path.lexists(local_path(path))
    return FileSystems.exists(path)


def check_replaced(
    output: str,
    num_shards: int,
    specs: Sequence[Spec],
    *,
    previous: str | None = None,
    model: str | None = None,
) -> None:
    """Raises :class:`ClassifyJobError` (one line naming ``--output`` and the file) when
    a run of ``output`` would write or remove an input, a file list, a file of the
    ``previous`` output (other than ``output`` itself) or of the bundle ``model``, or an
    existing file this job did not write (see the module's notes)."""
    previous_files = []
    if previous and not _same(previous, output):
        target = local_path(previous) if is_local(previous) else previous
        previous_files = previous_outputs(target)
    for path in replaced_paths(output, num_shards):
        what = f"--output {output}" + ("" if path == output else f" (its file {path})")
        for spec in specs:
            if isinstance(spec, FileListSpec) and _same(path, spec.path):
                raise ClassifyJobError(f"{what} is the --file-list {spec.path}")
            if isinstance(spec, InputSpec) and _input_holding(path, spec):
                raise ClassifyJobError(
                    f"{what} is an input: a file of --input {spec.input}; choose another --output"
                )
        for old in previous_files:
            if _same(path, old):
                raise ClassifyJobError(f"{what} is a file of --previous {previous} ({old})")
        if model and _inside(path, model):
            raise ClassifyJobError(f"{what} is inside the model bundle {model}")
        if _exists(path) and not _ours(path):
            raise ClassifyJobError(
                f"{what} exists and is not an output of this job (not the job's CSV "
                "header or run manifest); move it away or choose another --output"
            )
