"""The report page: one HTML file with inline CSS, an inline SVG chart and thumbnails
as ``data:`` URIs; no script and no URL of any kind, so it opens offline. Every text
from the results (paths, labels, reasons, manifest values) is HTML-escaped."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from html import escape

from logo_batch.report.reading import Row
from logo_batch.report.sampling import Summary
from logo_batch.report.thumbnails import THUMBNAIL_SIZE, Thumbnail
from logo_batch.result_csv import path_bytes

MARKER = "<!-- logo-batch report: a later `logo-batch report` may overwrite this file -->"
"""The comment that marks a file as a report (one that may be written over)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_COLOURS = {"brand": "#3b7dd8", "rejected": "#9a9a9a", "error": "#d9534f"}
_CSS = """
body{font:14px/1.4 system-ui,sans-serif;margin:24px;color:#222;background:#fff}
h1{font-size:22px}h2{font-size:18px;margin-top:32px;border-bottom:1px solid #ddd}
h3{font-size:15px;margin:18px 0 6px}
table{border-collapse:collapse;margin:8px 0}td,th{border:1px solid #ddd;padding:3px 8px;
text-align:left;vertical-align:top}td.n{text-align:right}
.sheet{display:flex;flex-wrap:wrap;gap:10px}
.card{margin:0;width:%(size)dpx;font-size:12px}.card img{display:block}
.ph{width:%(size)dpx;height:%(ph)dpx;display:flex;align-items:center;justify-content:center;
background:#f3f3f3;color:#a33;border:1px dashed #c99;font-weight:bold}
.path{color:#555;word-break:break-all}.note{color:#666}ul{margin:0;padding-left:18px}
"""


@dataclass
class Page:
    """Everything the page shows."""

    title: str
    files: list[str]
    summary: Summary
    thumbnails: dict[str, Thumbnail]
    manifest: list[tuple[str, str]] = field(default_factory=list)
    manifest_note: str = ""
    threshold: float | None = None
    threshold_source: str = ""
    thumbnail_size: int = THUMBNAIL_SIZE


def display_path(path: str) -> str:
    """A CSV path as a person reads it: its original bytes, a byte that is not UTF-8
    as ``\\xNN``, a control character (a newline) as ``\\xNN`` too."""
    text = path_bytes(path).decode("utf-8", "backslashreplace")
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


def _e(value: object) -> str:
    return escape(str(value), quote=True)


def _table(head: list[str], rows: list[list[str]]) -> str:
    """A table of already-escaped cells (a cell starting ``<td`` is taken as it is)."""
    cells = "".join(
        "<tr>" + "".join(c if c.startswith("<td") else f"<td>{c}</td>" for c in row) + "</tr>"
        for row in rows
    )
    return f"<table><tr>{''.join(f'<th>{_e(h)}</th>' for h in head)}</tr>{cells}</table>"


def _chart(bars: list[tuple[str, int, str]]) -> str:
    """A horizontal bar chart, inline SVG: ``(label, count, kind)``."""
    top = max([n for _, n, _ in bars] + [1])
    row, left, width = 22, 170, 460
    parts = [f'<svg width="{left + width + 90}" height="{row * len(bars) + 4}" role="img">']
    for i, (label, count, kind) in enumerate(bars):
        y, bar = i * row + 2, max(1, round(width * count / top)) if count else 0
        parts.append(
            f'<text x="{left - 6}" y="{y + 15}" text-anchor="end" font-size="12">'
            f"{_e(label[:28])}</text>"
            f'<rect x="{left}" y="{y + 3}" width="{bar}" height="{row - 6}" '
            f'fill="{_COLOURS[kind]}"/>'
            f'<text x="{left + bar + 6}" y="{y + 15}" font-size="12">{count:,}</text>'
        )
    return "".join(parts) + "</svg>"


def _photos(count: int) -> str:
    return f"{count:,} photo" + ("" if count == 1 else "s")


def _glance(page: Page) -> str:
    s = page.summary
    threshold = "none" if page.threshold is None else f"{page.threshold:.4f}"
    return (
        f"<p>{s.rows:,} rows: {sum(s.accepted.values()):,} given a brand, "
        f"{sum(s.rejected.values()):,} rejected, {s.error_rows:,} errors; "
        f"threshold {threshold}.</p>"
    )


def _card(row: Row, page: Page) -> str:
    thumb = page.thumbnails.get(row.path, Thumbnail(None, note="not made"))
    shown = display_path(row.path)
    if thumb.uri is None:
        picture = f'<div class="ph">{_e(thumb.note)}</div>'
    else:
        picture = (
            f'<img src="{thumb.uri}" width="{thumb.width}" height="{thumb.height}" '
            f'alt="{_e(os.path.basename(shown))}">'
        )
    score = "" if row.score is None else f" {row.score:.4f}"
    best = "" if row.accepted or not row.top_label else f" (best: {_e(row.top_label)})"
    return (
        f'<figure class="card">{picture}<figcaption><b>{_e(row.label)}</b>{score}{best}<br>'
        f'<span class="path" title="{_e(shown)}">{_e(os.path.basename(shown))}</span>'
        "</figcaption></figure>"
    )


def _sheet(rows: list[Row], page: Page) -> str:
    if not rows:
        return '<p class="note">none</p>'
    return '<div class="sheet">' + "".join(_card(r, page) for r in rows) + "</div>"


def _counts(s: Summary) -> str:
    labels = s.labels()
    bars = [(k, n, "brand" if ok else "rejected") for k, n, ok in labels]
    bars.append(("errors", s.error_rows, "error"))
    total = max(s.rows, 1)
    rows = [
        [_e(k), kind, f'<td class="n">{n:,}</td>', f'<td class="n">{100 * n / total:.1f}%</td>']
        for k, n, kind in bars
    ]
    table = _table(["label", "kind", "rows", "share"], rows)
    return f'<h2>Counts per label</h2><div class="sheet">{_chart(bars)}{table}</div>'


def _band(page: Page) -> str:
    s = page.summary
    if page.threshold is None:
        where = "no threshold (none given, in the manifest, or accepted in whole mode)"
        above, below = "accepted, lowest scores", "rejected, highest scores"
    else:
        where = f"threshold {page.threshold:.4f} ({_e(page.threshold_source)})"
        above = f"at or above {page.threshold:.4f}, lowest scores first"
        below = f"below {page.threshold:.4f}, highest scores first"
    return (
        f"<h2>Borderline: {where}</h2>"
        f"<h3>{above}</h3>{_sheet(s.above.items(), page)}"
        f"<h3>{below}</h3>{_sheet(s.below.items(), page)}"
    )


def _brands(page: Page) -> str:
    s = page.summary
    parts = [f"<h2>Contact sheets: up to {s.samples_per_brand} photos per brand</h2>"]
    for label, count, accepted in s.labels():
        if accepted:
            parts.append(f"<h3>{_e(label)}: {_photos(count)}</h3>")
            parts.append(_sheet(s.samples[label].items(), page))
    if len(parts) == 1:
        parts.append('<p class="note">no photo was given a brand</p>')
    return "".join(parts)


def _errors(s: Summary) -> str:
    if not s.errors:
        return "<h2>Errors</h2><p class=note>none</p>"
    rows = []
    for reason, group in sorted(s.errors.items(), key=lambda kv: (-kv[1].count, kv[0])):
        paths = group.paths.items()
        more = group.count - len(paths)
        items = "".join(f"<li>{_e(display_path(p))}</li>" for p in paths)
        items += f'<li class="note">and {more:,} more</li>' if more else ""
        rows.append([_e(reason), f'<td class="n">{group.count:,}</td>', f"<ul>{items}</ul>"])
    return f"<h2>Errors by reason ({s.error_rows:,} rows)</h2>" + _table(
        ["reason", "rows", "paths"], rows
    )


def _facts(page: Page) -> str:
    files = "<br>".join(_e(display_path(f)) for f in page.files)
    rows = [["results", files]] + [[_e(k), _e(v)] for k, v in page.summary.facts()]
    threshold = "-" if page.threshold is None else f"{page.threshold:.4f}"
    rows.append(["threshold", _e(f"{threshold} ({page.threshold_source})")])
    manifest = [[_e(k), _e(v)] for k, v in page.manifest]
    note = f'<p class="note">{_e(page.manifest_note)}</p>' if page.manifest_note else ""
    return (
        "<h2>The run</h2><h3>From the rows</h3>"
        + _table(["fact", "value"], rows)
        + "<h3>From the manifest</h3>"
        + note
        + (_table(["key", "value"], manifest) if manifest else "")
    )


def render(page: Page) -> str:
    """The whole page."""
    size = page.thumbnail_size
    css = _CSS % {"size": size, "ph": size * 3 // 4}
    body = [
        f"<h1>{_e(page.title)}</h1>",
        _glance(page),
        _counts(page.summary),
        _band(page),
        _brands(page),
        _errors(page.summary),
        _facts(page),
    ]
    return (
        f'<!DOCTYPE html>\n{MARKER}\n<html lang="en"><head><meta charset="utf-8">'
        f"<title>{_e(page.title)}</title><style>{css}</style></head>"
        f"<body>{''.join(body)}</body></html>\n"
    )
