"""``logo-batch report``: the page of a small run made here (real photos written with
Pillow; brands, none, unknown, errors, boxes, a missing and a corrupt photo, a
non-UTF-8 name, a name with ``<&"``), shards, the bounds, and the output's safety."""

from __future__ import annotations

import base64
import io
import json
import random
import re
from pathlib import Path

import pytest
from PIL import Image
from report_support import GREY, make_run, row, write_csv

from logo_batch import cli
from logo_batch.report import reading, sampling
from logo_batch.report.build import ReportOptions, make_report
from logo_batch.report.html import MARKER
from logo_batch.report.thumbnails import BOX_COLOUR
from logo_batch.result_csv import CSV_COLUMNS, ROW_COLUMNS


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, list[dict]]:
    return tmp_path, make_run(tmp_path)


def _report(tmp_path: Path, *results: str, **options) -> str:
    out = tmp_path / "report.html"
    make_report(list(results), str(out), ReportOptions(**options))
    return out.read_text(encoding="utf-8")


def _cards(page: str, heading: str) -> list[str]:
    """The captions' file names under the ``<h3>`` that starts with ``heading``."""
    section = page.split(f"<h3>{heading}", 1)[1].split("<h", 1)[0]
    return re.findall(r'<span class="path" title="[^"]*">([^<]*)</span>', section)


def _thumbnail(page: str, name: str) -> Image.Image:
    found = re.search(
        r'<img src="data:image/jpeg;base64,([^"]+)"[^>]*alt="' + re.escape(name), page
    )
    assert found, f"no thumbnail of {name}"
    return Image.open(io.BytesIO(base64.b64decode(found.group(1)))).convert("RGB")


def _near(pixel, colour, tolerance=40) -> bool:
    return all(abs(a - b) <= tolerance for a, b in zip(pixel, colour, strict=True))


def test_the_page_shows_counts_samples_boxes_band_and_errors(run):
    tmp_path, rows = run
    results = write_csv(tmp_path / "results.csv", rows)
    page = _report(tmp_path, str(results), samples_per_brand=3, band_size=2, error_paths=2)
    assert page.startswith("<!DOCTYPE html>\n" + MARKER)
    # Counts: bars and table.
    for label, kind, count in [("Adidas", "brand", 6), ("Nike", "brand", 3),
                               ("none", "rejected", 3), ("unknown", "rejected", 1),
                               ("errors", "error", 4)]:  # fmt: skip
        assert f'<td>{label}</td><td>{kind}</td><td class="n">{count}</td>' in page
        assert f">{label}</text>" in page
    # Each brand's sample: the rows with the smallest hash of their path, shown in that order.
    adidas = sorted(
        (r for r in rows if r["label"] == "Adidas"), key=lambda r: sampling.path_key(r["path"])
    )
    assert _cards(page, "Adidas: 6 photos") == [Path(r["path"]).name for r in adidas[:3]]
    assert sorted(_cards(page, "Nike: 3 photos")) == sorted(
        ["nike.png", "turned.jpg", "caf\\xe9.jpg"]
    )
    # The box is drawn, scaled: 400x300 -> 200x150, box 100 50 300 250 -> 50 25 149 124.
    thumb = _thumbnail(page, _cards(page, "Adidas")[0])
    assert thumb.size == (200, 150)
    assert _near(thumb.getpixel((51, 75)), BOX_COLOUR) and _near(
        thumb.getpixel((148, 75)), BOX_COLOUR
    )
    assert _near(thumb.getpixel((100, 75)), GREY) and _near(thumb.getpixel((20, 75)), GREY)
    # ... in the EXIF-turned photo's pixels: shown 100x200, box 20 300 180 380 -> 10 150 89 189.
    turned = _thumbnail(page, "turned.jpg")
    assert turned.size == (100, 200)
    assert _near(turned.getpixel((11, 170)), BOX_COLOUR) and _near(turned.getpixel((50, 170)), GREY)
    assert _near(_thumbnail(page, "nike.png").getpixel((10, 10)), GREY)  # no box: none drawn
    # The non-UTF-8 name reads as \xe9 and its photo was opened by its bytes.
    assert _near(_thumbnail(page, "caf\\xe9.jpg").getpixel((5, 5)), GREY)
    # Threshold inferred (lowest accepted score in whole mode); the band around it.
    assert "threshold 0.6000 (inferred" in page
    assert _cards(page, "at or above 0.6000") == ["adidas0.jpg", "adidas1.jpg"]
    assert _cards(page, "below 0.6000") == ["a&lt;b&amp;&quot;c.jpg", "gone.jpg"]
    assert "a<b" not in page
    band = page.split("<h3>below 0.6000", 1)[1].split("<h2>", 1)[0]
    assert '<div class="ph">missing</div>' in band  # gone since the run: a placeholder
    assert "<b>none</b> 0.5800 (best: Pepsi)<br>" in band  # the brand it would have been
    # Errors by reason, with their paths (up to 2 each) and how many more.
    assert '<td>image is corrupt</td><td class="n">3</td>' in page
    assert page.count('<li class="note">and 1 more</li>') == 1
    assert '<td>not a regular file</td><td class="n">1</td>' in page and "/pipe</li>" in page
    # The facts from the rows; no manifest.
    assert "<td>rows</td><td>17</td>" in page and "single (1), whole (16)" in page
    assert "no manifest beside the results" in page
    # Self-contained: nothing fetched, nothing run.
    text = re.sub(r'src="data:image/jpeg;base64,[A-Za-z0-9+/=]+"', "", page)
    assert "http" not in text and "//" not in text and "url(" not in text
    assert "<script" not in page and not re.search(r'src="(?!data:image/jpeg;base64,)', page)


def test_a_corrupt_photo_is_a_placeholder(run):
    tmp_path, rows = run
    results = write_csv(tmp_path / "results.csv", rows)
    page = _report(tmp_path, str(results), band_size=10)
    card = page.split('title="' + str(tmp_path / "photos" / "corrupt.jpg"), 1)[0].rsplit(
        "<figure", 1
    )[1]
    assert '<div class="ph">unreadable: ' in card


def test_the_same_rows_in_shards_or_in_another_order_give_the_same_page(run):
    tmp_path, rows = run
    one = write_csv(tmp_path / "results.csv", rows)
    shuffled = rows[:]
    random.Random(1).shuffle(shuffled)
    shards = tmp_path / "sharded"
    shards.mkdir()
    write_csv(shards / "results-00000-of-00002.csv", shuffled[:7])
    write_csv(shards / "results-00001-of-00002.csv", shuffled[7:])
    (shards / "results-x-of-00002.csv").write_text("not a shard")  # not matched
    options = dict(samples_per_brand=2, band_size=2, title="t")
    merged = _report(tmp_path, str(one), **options)
    sharded = _report(tmp_path, str(shards / "results.csv"), **options)
    run_facts = "<h2>The run</h2>"  # the files differ; everything before them is the same
    assert sharded.split(run_facts)[0] == merged.split(run_facts)[0]
    assert sharded.count("results-0000") == 2
    assert _report(tmp_path, str(shards / "results-0*-of-*.csv"), **options) == sharded


def test_predict_csv_manifest_and_a_given_threshold(run):
    tmp_path, rows = run
    results = write_csv(tmp_path / "predictions.csv", rows, CSV_COLUMNS)  # eight columns
    manifest = {
        "model": {"path": "/m/bundle", "classes": ["Adidas", "Nike"]},
        "settings": {"mode": "whole", "min_score": 0.7},
    }
    (tmp_path / "predictions.manifest.json").write_text(json.dumps(manifest))
    page = _report(tmp_path, str(results), band_size=2)
    assert "<td>model.path</td><td>/m/bundle</td>" in page
    assert "<td>model.classes</td><td>Adidas, Nike</td>" in page
    assert "threshold 0.7000 (the manifest&#x27;s settings.min_score)" in page
    assert _cards(page, "at or above 0.7000") == ["adidas2.jpg", "adidas3.jpg"]
    assert _cards(page, "below 0.7000") == ["adidas1.jpg", "adidas0.jpg"]
    assert "<td>fingerprints</td><td>-</td>" in page  # predict's CSV has none
    page = _report(tmp_path, str(results), band_size=1, min_score=0.85)
    assert _cards(page, "at or above 0.8500") == ["adidas5.jpg"]
    (tmp_path / "predictions.manifest.json").write_text("{not json")
    page = _report(tmp_path, str(results))
    assert "unreadable manifest" in page and "threshold 0.6000 (inferred" in page


def test_the_summary_stays_within_its_bounds_on_a_long_stream():
    k, band, paths = 3, 4, 2
    summary = sampling.Summary(samples_per_brand=k, band_size=band, error_paths=paths)
    rng = random.Random(0)
    brands = [f"brand{i}" for i in range(5)]
    seen: dict[str, list[str]] = {b: [] for b in brands}
    for i in range(20_000):
        score = rng.random()
        brand = rng.choice(brands)
        kind = rng.random()
        if kind < 0.1:
            row = reading.Row(f"/p/{i}.jpg", "", None, "", f"reason {i % 150}", "", "whole", "")
        elif kind < 0.4:
            row = reading.Row(f"/p/{i}.jpg", "none", score * 0.5, brand, "", "", "whole", "")
        else:
            row = reading.Row(f"/p/{i}.jpg", brand, 0.5 + score / 2, brand, "", "", "whole", "")
            seen[brand].append(row.path)
        summary.add(row)
        assert all(len(s) < 2 * k for s in summary.samples.values())
        assert len(summary.above) < 2 * band and len(summary.below) < 2 * band
        assert len(summary.errors) <= sampling.MAX_REASONS + 1
        assert all(len(g.paths) < 2 * paths for g in summary.errors.values())
    assert sampling.OTHER in summary.errors  # 150 reasons: those past the limit together
    assert sum(g.count for g in summary.errors.values()) == summary.error_rows
    for brand in brands:  # what is kept is exactly the k smallest hashes
        expected = sorted(seen[brand], key=sampling.path_key)[:k]
        assert [r.path for r in summary.samples[brand].items()] == expected
    assert summary.lowest_accepted_whole == min(r.score for r in summary.above.items())


def test_bad_results_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.csv: no such results"):
        make_report([str(tmp_path / "nope.csv")], str(tmp_path / "r.html"))
    with pytest.raises(FileNotFoundError, match="a folder; give the results CSV"):
        make_report([str(tmp_path)], str(tmp_path / "r.html"))
    other = tmp_path / "other.csv"
    other.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="other.csv: not a results CSV .no path, label"):
        make_report([str(other)], str(tmp_path / "r.html"))
    short = write_csv(tmp_path / "short.csv", [row("/p/a.jpg", "Nike", 0.9)])
    with open(short, "a") as handle:
        handle.write("/p/b.jpg,Nike\n")
    columns = len(ROW_COLUMNS)  # the header write_csv wrote
    with pytest.raises(ValueError, match=rf"short.csv:3: 2 fields, the header has {columns}"):
        make_report([str(short)], str(tmp_path / "r.html"))
    assert not (tmp_path / "r.html").exists()


def test_the_output_is_never_an_input_nor_a_file_it_did_not_write(run):
    tmp_path, rows = run
    results = write_csv(tmp_path / "results.csv", rows)
    before = results.read_bytes()
    with pytest.raises(ValueError, match="is one of the inputs"):
        make_report([str(results)], str(results))
    notes = tmp_path / "notes.html"
    notes.write_text("<html>my notes</html>")
    with pytest.raises(ValueError, match="is not a report this command wrote"):
        make_report([str(results)], str(notes))
    assert notes.read_text() == "<html>my notes</html>" and results.read_bytes() == before
    written = make_report([str(results)])  # default: beside the results
    assert written.path == str(tmp_path / "results.report.html")
    make_report([str(results)], written.path, ReportOptions(title="again"))  # its own: rewritten
    assert "<title>again</title>" in Path(written.path).read_text()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "notes.html",
        "photos",
        "results.csv",
        "results.report.html",
    ]


def test_thumbnails_only_for_the_sampled_rows(tmp_path):
    rows = [row(f"/gone/{i}.jpg", f"B{i % 3}", 0.5 + (i % 50) / 100) for i in range(3000)]
    results = write_csv(tmp_path / "results.csv", rows)
    written = make_report(
        [str(results)], str(tmp_path / "r.html"), ReportOptions(samples_per_brand=4, band_size=5)
    )
    assert written.rows == 3000
    assert written.thumbnails <= 3 * 4 + 5  # the brands' samples and the band (nothing below)


def test_the_command(run, capsys):
    tmp_path, rows = run
    results = write_csv(tmp_path / "results.csv", rows)
    out = tmp_path / "out" / "page.html"
    assert cli.main(["report", str(results), "--output", str(out), "--samples-per-brand", "1"]) == 0
    assert f"report: {out} (17 rows from 1 file(s)" in capsys.readouterr().out
    assert len(_cards(out.read_text(), "Adidas")) == 1
    assert cli.main(["report", str(tmp_path / "nothing.csv")]) == 1
    assert "nothing.csv: no such results" in capsys.readouterr().err
