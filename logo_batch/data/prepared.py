"""A prepared split's files checked before they are read: a missing or truncated TFRecord
shard is one line naming the file, not a ``DataLossError`` traceback in the middle of
training or evaluation.

A TFRecord file is a run of records, each an 8-byte length, a 4-byte CRC of it, the
data and a 4-byte CRC of the data. ``dataset_info.json`` records each shard's number of
examples and the split's bytes of data, so the files of an intact split hold exactly
``num_bytes + 16 * examples`` bytes: one ``stat`` per shard. Only when they do not are
the shards walked, record header by record header (12 bytes read a record, the data
skipped), to name the one that is short or cut. The records' CRCs are checked as they
are read (TensorFlow's reader).
"""

from __future__ import annotations

import glob
import os
import struct
from collections.abc import Sequence

RECORD_FRAMING = 16  # length (8) + its CRC (4) + the data's CRC (4)
_HEADER = struct.Struct("<QI")
_HOW_TO_FIX = "the prepared dataset is damaged: build it again"


class DatasetError(ValueError):
    """A prepared dataset whose files cannot be read as its info says; names the file."""


def _shard_problem(path: str, examples: int) -> str:
    """What is wrong with one shard that should hold ``examples`` records ("" when its
    records are whole and as many)."""
    size = os.path.getsize(path)
    count = 0
    with open(path, "rb") as handle:
        while handle.tell() < size:
            header = handle.read(_HEADER.size)
            if len(header) < _HEADER.size:
                return f"cut in the header of record {count + 1} (offset {handle.tell()})"
            length, _ = _HEADER.unpack(header)
            end = handle.tell() + length + 4
            if end > size:
                return (
                    f"truncated: record {count + 1} needs {end - size:,} bytes more than "
                    f"the file's {size:,}"
                )
            handle.seek(end)
            count += 1
    if count != examples:
        return f"holds {count} records, its dataset_info.json says {examples}"
    return ""


def check_shards(
    paths: Sequence[str], examples: Sequence[int], data_bytes: int | None, split: str
) -> None:
    """Raises :class:`DatasetError` naming the first shard of ``split`` that is missing,
    truncated or holds another number of records than ``examples`` says (shards in
    order). ``data_bytes``: the split's bytes of data (``num_bytes``): when the files'
    sizes add up to it, nothing is read."""
    sizes = []
    for path in paths:
        try:
            sizes.append(os.path.getsize(path))
        except OSError as error:
            raise DatasetError(
                f"{path}: a file of the {split} split cannot be read "
                f"({error.strerror or error}); {_HOW_TO_FIX}"
            ) from error
    if data_bytes is not None and sum(sizes) == data_bytes + RECORD_FRAMING * sum(examples):
        return
    for path, count in zip(paths, examples, strict=True):
        problem = _shard_problem(path, count)
        if problem:
            raise DatasetError(f"{path}: {problem}; {_HOW_TO_FIX}")


def check_split(builder, split: str) -> None:
    """:func:`check_shards` for the split ``split`` (TFDS slicing allowed: the whole
    split is checked) of a prepared TFDS builder's local TFRecord files (other file
    formats and remote data are read unchecked)."""
    info = builder.info.splits[split.split("[", 1)[0]]
    paths = [os.fspath(path) for path in info.filepaths]
    if not paths or any("://" in path or ".tfrecord" not in path for path in paths):
        return
    check_shards(paths, list(info.shard_lengths), int(info.num_bytes or 0) or None, info.name)


def failing_shard(paths: Sequence[str]) -> str | None:
    """The first of the TFRecord files ``paths`` TensorFlow's reader fails on (a record
    whose CRC is wrong), read to its end; None when every one reads."""
    import tensorflow as tf

    for path in paths:
        try:
            tf.data.TFRecordDataset(path).reduce(0, lambda count, _: count + 1)
        except tf.errors.DataLossError:
            return path
    return None


def corrupt_records_message(
    error: Exception, data_dir: str | os.PathLike, dataset: str | None = None
) -> str:
    """One line for TensorFlow's ``DataLossError`` while reading a prepared dataset (a
    record whose CRC fails: damage :func:`check_shards` cannot see without reading),
    naming the file: the TFRecord files of ``dataset`` in ``data_dir`` (all of
    ``data_dir``'s when None) are read again to find it (:func:`failing_shard`; only
    after this failure)."""
    text = getattr(error, "message", None) or str(error)
    reason = text.split("}}")[-1].split("[Op:")[0].strip() or type(error).__name__
    folder = os.path.join(data_dir, dataset) if dataset else os.fspath(data_dir)
    pattern = os.path.join(glob.escape(folder), "**", "*.tfrecord*")
    path = failing_shard(sorted(glob.glob(pattern, recursive=True)))
    where = (
        f"{path}: a record fails its check as it is read"
        if path
        else f"{data_dir}: a TFRecord file of the prepared dataset is corrupt"
    )
    return f"{where} ({reason}); {_HOW_TO_FIX}"
