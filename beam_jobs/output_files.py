"""Where the CSV goes: the output checked before the run, the temporary folder beside
it, the folders killed runs left, and the files an earlier run wrote there.

The shards are written to a temporary folder named after the run (host, pid), so a later
run can remove the folders of killed runs (never a live run's), and moved to
``--output`` only once checked; an earlier run's shards are removed only at that move.
"""

from __future__ import annotations

import glob
import logging
import os
import re
import shutil
import socket
import uuid

from apache_beam.io.filesystems import FileSystems

from beam_jobs.errors import ClassifyJobError
from beam_jobs.inputs import is_local, os_reason
from beam_jobs.processes import pid_alive
from logo_batch.result_csv import local_output_files, shard_pattern

_LOGGER = logging.getLogger(__name__)


def output_paths(output: str, num_shards: int) -> list[str]:
    """Final file names: ``output`` itself, or ``stem-00000-of-0000N.ext`` per shard."""
    if num_shards == 1:
        return [output]
    stem, ext = os.path.splitext(output)
    return [f"{stem}-{i:05d}-of-{num_shards:05d}{ext or '.csv'}" for i in range(num_shards)]


def delete_quietly(path: str) -> None:
    try:
        if FileSystems.exists(path):
            FileSystems.delete([path])
    except Exception:  # noqa: BLE001
        _LOGGER.warning("could not remove temporary folder %s", path, exc_info=True)


def check_output(output: str, num_shards: int) -> None:
    """Fails before any work when the CSV file(s) could not be written at ``output``.

    Local outputs only (a remote store is checked when written): no output path may
    be a folder, and the nearest existing folder above must be a writable folder.
    """
    if not is_local(output):
        return
    for path in [output, *output_paths(output, num_shards)]:
        if os.path.isdir(path):
            raise ClassifyJobError(
                f"{path}: --output is a folder; give a CSV file name, e.g. "
                f"{os.path.join(path, 'results.csv')}"
            )
    parent = os.path.dirname(output)
    existing = parent
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        raise ClassifyJobError(f"cannot write {output}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ClassifyJobError(f"cannot write {output}: {existing}: no permission to write there")


def make_output_folder(output: str) -> None:
    """Creates a local output's folder (once every check has passed: a refused run
    leaves nothing behind, not even a folder)."""
    if not is_local(output):
        return
    parent = os.path.dirname(output)
    try:
        os.makedirs(parent or ".", exist_ok=True)
    except OSError as error:
        raise ClassifyJobError(f"cannot write {output}: {parent}: {os_reason(error)}") from error


_TEMP_SUFFIX = re.compile(r"\.tmp-(?P<host>.+)-(?P<pid>\d+)-(?P<token>[0-9a-f]{12})")


def temp_folder(output: str) -> str:
    """``.NAME.tmp-HOST-PID-TOKEN`` beside the output: whose run made it, findable."""
    out_dir, out_name = os.path.split(output)
    token = uuid.uuid4().hex[:12]
    return FileSystems.join(
        out_dir, f".{out_name}.tmp-{socket.gethostname()}-{os.getpid()}-{token}"
    )


def remove_stale_temp_folders(output: str) -> list[str]:
    """Removes the temporary folders of ``output`` whose run is dead; returns them.

    A run that was killed (SIGKILL, SIGTERM, a crash) leaves its
    ``.NAME.tmp-HOST-PID-TOKEN`` folder. Only folders of this output, made on this
    host by a process that no longer exists, are removed: never another live run's.
    Local outputs only.
    """
    if not is_local(output):
        return []
    out_dir, out_name = os.path.split(output)
    prefix = f".{out_name}"
    removed = []
    try:
        names = os.listdir(out_dir)
    except OSError:
        return []
    for name in sorted(names):
        match = _TEMP_SUFFIX.fullmatch(name[len(prefix) :]) if name.startswith(prefix) else None
        if not match or match["host"] != socket.gethostname() or pid_alive(int(match["pid"])):
            continue
        path = os.path.join(out_dir, name)
        shutil.rmtree(path, ignore_errors=True)
        if not os.path.exists(path):
            removed.append(path)
            _LOGGER.info("removed %s, left by a run that was killed", path)
    return removed


def previous_outputs(output: str) -> list[str]:
    """The CSV files an earlier run of ``output`` wrote, with any ``--num_shards``:
    ``output`` itself and ``STEM-NNNNN-of-NNNNN.EXT``."""
    if is_local(output):
        return local_output_files(output)
    stem, ext = os.path.splitext(output)
    shard = shard_pattern(output)
    pattern = glob.escape(stem) + "-*-of-*" + glob.escape(ext or ".csv")
    found = [m.path for m in FileSystems.match([pattern])[0].metadata_list]
    found = [path for path in found if shard.fullmatch(path.rsplit("/", 1)[-1])]
    return sorted(found + ([output] if FileSystems.exists(output) else []))
