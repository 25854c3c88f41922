"""Deterministic, leak-free split plans: by image group, stratified by primary label.

Byte-identical images (same sha256) form one group and always land in the same split.
Groups are stratified by their primary label and ordered inside a class by
``sha256(salt + group hash)``: deterministic, yet independent of file names. A group
holding an image that is byte-identical to a query-set image is *forced* (left out of
the ``images`` config, sent to ``test`` in ``crops``) and counts towards that quota.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence

from tfds_flickr27 import annotations as ann
from tfds_flickr27.archive import ArchiveIndex

EXCLUDED = "excluded"


def image_groups(index: ArchiveIndex) -> dict[str, list[str]]:
    """Training-set images grouped by content: ``{sha256: [filename, ...]}`` (sorted)."""
    groups: dict[str, list[str]] = {}
    for filename in sorted(index.training.labels):
        groups.setdefault(index.sha256[filename], []).append(filename)
    return groups


def group_labels(index: ArchiveIndex, groups: Mapping[str, list[str]]) -> dict[str, str]:
    """Each group's primary label: the class of its largest box (see ``primary_label``)."""
    boxes: dict[str, list[ann.Box]] = {}
    for box in index.training.boxes:
        boxes.setdefault(box.filename, []).append(box)
    result = {}
    for digest, files in groups.items():
        labels = sorted({lab for f in files for lab in index.training.labels[f]})
        result[digest] = ann.primary_label([b for f in files for b in boxes.get(f, [])], labels)
    return result


def assign(
    labels: Mapping[str, str],
    fractions: Sequence[tuple[str, float]],
    *,
    default: str = "train",
    forced: Mapping[str, str] | None = None,
    salt: str = "flickr_logos27",
) -> dict[str, str]:
    """Maps each group to a split name.

    Per label, split ``s`` of ``fractions`` gets ``round(fraction * n)`` groups (``n``
    excluding groups forced to ``EXCLUDED``), forced groups first; the rest go to
    ``default``.
    """
    forced = dict(forced or {})
    result: dict[str, str] = {}
    by_label: dict[str, list[str]] = {}
    for digest, label in labels.items():
        by_label.setdefault(label, []).append(digest)
    for members in by_label.values():
        members.sort(key=lambda d: hashlib.sha256(f"{salt}:{d}".encode()).hexdigest())
        total = sum(forced.get(d) != EXCLUDED for d in members)
        free = [d for d in members if d not in forced]
        for split, fraction in fractions:
            quota = int(fraction * total + 0.5) - sum(forced.get(d) == split for d in members)
            for digest in free[: max(quota, 0)]:
                result[digest] = split
            free = free[max(quota, 0) :]
        result.update(dict.fromkeys(free, default))
        result.update({d: forced[d] for d in members if d in forced})
    return result


def plan(index: ArchiveIndex, fractions: Sequence[tuple[str, float]], leak_split: str):
    """Split of every training-set image: ``{filename: split}``.

    ``leak_split`` is where groups byte-identical to a query image go (``EXCLUDED`` or a
    split name).
    """
    groups = image_groups(index)
    query_hashes = {index.sha256[f] for f in index.query}
    forced = {d: leak_split for d in groups if d in query_hashes}
    splits = assign(group_labels(index, groups), fractions, forced=forced)
    return {f: splits[d] for d, files in groups.items() for f in files}
