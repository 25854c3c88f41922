"""What a folder build did, as lines for people: examples per brand and split, and
every file or ``boxes.csv`` line left out or changed, with the reason."""

from __future__ import annotations

from tfds_flickr27.annotations import NONE_LABEL
from tfds_flickr27.names import CROPS, IMAGES
from tfds_logo_folder.build import UNCHANGED, BuildResult
from tfds_logo_folder.plan import SPLITS

_LISTS = (
    ("skipped_files", "files skipped"),
    ("skipped_rows", "rows of boxes.csv skipped"),
    ("rejected_boxes", "boxes rejected: no pixel inside their photo"),
    ("zero_area_boxes", "zero-area boxes dropped (their photo keeps the brand)"),
    ("clipped_boxes", "boxes clipped to their photo"),
    ("spellings", "brand spellings merged"),
)


def _cells(counts, label: str) -> str:
    return "/".join(str(counts[split][label]) for split in SPLITS)


def summary_lines(result: BuildResult, folder: str) -> list[str]:
    """The lines ``logo-batch dataset build`` prints."""
    index, report = result.index, result.index.report
    name = result.path.name
    if result.status == UNCHANGED:
        lines = [f"{result.path}: already built from these files and fractions; nothing changed"]
    else:
        lines = [
            f"{result.status} {name} ({', '.join(result.configs)}) in {result.path} from {folder}"
        ]
    lines.append(f"{len(index.brands)} brands, then {NONE_LABEL}: {', '.join(index.brands)}")
    crops, photos = index.counts(CROPS), index.counts(IMAGES)
    rows = [("brand", "crops", "photos")]
    rows += [(b, _cells(crops, b), _cells(photos, b)) for b in index.brands]
    rows.append((NONE_LABEL, "-", _cells(photos, NONE_LABEL)))
    widths = [max(len(row[i]) for row in rows) for i in range(3)]
    lines.append(f"examples per split ({'/'.join(SPLITS)}):")
    for row in rows:
        lines.append(
            "  " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        )
    for key, heading in _LISTS:
        entries = getattr(report, key)
        if entries:
            lines.append(f"{heading}: {len(entries)}")
            lines.extend(f"  {where}: {why}" for where, why in entries.items())
    if report.rotated:
        lines.append(
            f"files stored upright, as their EXIF orientation shows them: {len(report.rotated)}"
        )
        lines.extend(f"  {name}" for name in report.rotated)
    for config, missing in report.missing.items():
        if missing:
            lines.append(f"brands with no example in a split of {name}/{config}:")
            lines.extend(f"  {brand}: {', '.join(splits)}" for brand, splits in missing.items())
    return lines
