"""The benchmarks' helpers that decide what a figure means (never timings)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from image_files import encode
from PIL import Image

from benchmarks.common import describe_gpus
from benchmarks.decode_reference import REFERENCES
from logo_batch.inference.preprocessing import preprocess_image_file

SIZE = 32


def test_results_header_names_the_gpus():
    assert describe_gpus(0, []) == "no GPU"
    assert describe_gpus(2, ["NVIDIA A100", "NVIDIA A100"]) == (
        "2 GPU(s) used by TensorFlow (NVIDIA A100, NVIDIA A100)"
    )
    assert describe_gpus(1, []) == "1 GPU(s) used by TensorFlow"
    assert describe_gpus(0, ["Tesla T4"]) == (
        "no GPU used by TensorFlow, though nvidia-smi lists (Tesla T4)"
    )


@pytest.mark.parametrize("name", sorted(REFERENCES))
def test_reference_decoders_make_the_same_picture_at_the_input_size(name):
    """Each reference does the job ours does (a downscaled RGB picture of the file),
    so comparing speeds compares like with like."""
    module, make = REFERENCES[name]
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} not installed")
    height, width = 150, 200  # decoded at 1/4 for 32 px
    y, x = np.mgrid[0:height, 0:width]
    pixels = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90.0)], axis=-1)
    data = encode(Image.fromarray(pixels.astype(np.uint8)), "JPEG", quality=90)
    picture = np.asarray(make(SIZE)(data))
    assert picture.shape == (SIZE, SIZE, 3) and picture.dtype == np.uint8
    if module == "cv2":
        picture = picture[..., ::-1]  # OpenCV decodes to BGR
    ours = preprocess_image_file(data, SIZE)
    assert np.abs(picture.astype(np.float32) - ours).mean() < 3.0


def test_a_partial_run_replaces_only_its_own_sections_of_the_results():
    from benchmarks.common import Section
    from benchmarks.run import merge_results

    old = "# Benchmark results\n\n- command: full\n\n### 1. input\n\nkept\n\n### 3. bulk\n\nold\n"
    merged = merge_results(old, [Section("3. bulk again"), Section("2. feed")], "cmd", "today")
    assert merged.startswith("# Benchmark results\n\n- command: full\n")
    assert "kept" in merged and "old" not in merged
    titles = [line for line in merged.splitlines() if line.startswith("### ")]
    assert titles == ["### 1. input", "### 2. feed", "### 3. bulk again"]
    assert merged.count("(measured by `cmd`, today)") == 2


def test_a_full_run_writes_the_results_whole(tmp_path, monkeypatch):
    """Nothing of the recorded file survives a full run, hand-written text included:
    RESULTS.md is what ``benchmarks.run`` measured, nothing else."""
    import time

    from benchmarks import run
    from benchmarks.common import Section

    results = tmp_path / "RESULTS.md"
    old = "# Results\n\n- command: old\n\n### 1. input\n\nold one\n\n## Bounds\n\nwhy\n"
    results.write_text(old)
    monkeypatch.setattr(run, "RESULTS", results)
    monkeypatch.setattr(run, "machine", lambda: "2 cores")
    run.write_results([Section("1. input again")], "full", "real", time.time())
    written = results.read_text()
    assert "- command: `full`" in written and "- machine: 2 cores" in written
    assert "old one" not in written and "why" not in written
    titles = [line for line in written.splitlines() if line.startswith("#")]
    assert titles == ["# Benchmark results", "### 1. input again"]
    assert [path.name for path in tmp_path.iterdir()] == ["RESULTS.md"]  # no partial file left


def test_camera_rows_compare_the_two_decodes_on_upscaled_photos(tmp_path):
    from beam_support import make_background_bundle

    from benchmarks.bench_whole_photo import camera_rows

    rng = np.random.default_rng(7)
    photos = []
    for index in range(4):
        path = tmp_path / f"p{index}.jpg"
        path.write_bytes(
            encode(Image.fromarray(rng.integers(0, 256, (30, 40, 3), np.uint8)), "JPEG")
        )
        photos.append(path)
    bundle = make_background_bundle(tmp_path / "bundle")
    rows, note = camera_rows(bundle, photos, tmp_path / "work", side=400, count=2)
    assert [Image.open(p).size for p in sorted((tmp_path / "work" / "camera_400").iterdir())] == [
        (400, 300),
        (400, 300),
    ]
    full, dct, single = rows
    assert "full-size decode" in full.name and "DCT-downscaled" in dct.name
    assert full.ratio == 1.0 and dct.ratio == pytest.approx(dct.value / full.value)
    assert "single mode" in dct.note and single.ratio == pytest.approx(single.value / full.value)
    assert "of 2 photos" in note
