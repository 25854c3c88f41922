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


def test_a_partial_run_keeps_the_text_after_the_numbered_sections_at_the_end():
    from benchmarks.common import Section
    from benchmarks.run import merge_results

    header = "# Results\n\n- command: full\n- machine: " + "2 cores, " * 40 + "\n\nRead ratios.\n\n"
    old = header + "### 1. input\n\none\n\n### 2. feed\n\ntwo\n\n## What bounds\n\nwhy\n"
    merged = merge_results(old, [Section("2. feed again"), Section("3. bulk")], "cmd", "today")
    assert merged.startswith(header + "### 1. input")
    assert merged.rstrip().endswith("## What bounds\n\nwhy")
    assert "one" in merged and "two" not in merged
    titles = [line for line in merged.splitlines() if line.startswith("#")]
    assert titles == ["# Results", "### 1. input", "### 2. feed again", "### 3. bulk",
                      "## What bounds"]  # fmt: skip


def test_a_full_run_rewrites_every_section_and_keeps_what_bounds_them(tmp_path, monkeypatch):
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
    assert "old one" not in written and "- command: `full`" in written
    titles = [line for line in written.splitlines() if line.startswith("#")]
    assert titles == ["# Benchmark results", "### 1. input again", "## Bounds"]
    assert written.rstrip().endswith("## Bounds\n\nwhy")


def test_proposal_targets_mark_the_cells_of_each_box_and_skip_empty_boxes():
    from benchmarks.probe_proposals import targets

    boxes = np.array([[0.1, 0.2, 0.3, 0.5], [0.5, 0.5, 0.5, 0.6], [0.8, 0.8, 0.82, 0.81]])
    truth = targets([boxes], 10)[0]
    logo = truth[..., 0].astype(bool)
    expected = np.zeros((10, 10), bool)
    expected[1:3, 2:5] = True  # cell centres inside the first box
    expected[8, 8] = True  # a box smaller than a cell still marks the cell of its centre
    np.testing.assert_array_equal(logo, expected)  # the zero-area box marks nothing
    np.testing.assert_allclose(truth[2, 3, 1:], np.log([0.2, 0.3]), rtol=1e-6)


def test_proposals_put_the_predicted_box_around_the_strongest_peaks_inside_the_photo():
    from benchmarks.probe_proposals import MARGINS, MIN_SIDE, proposals

    pred = np.full((10, 10, 3), -5.0)
    pred[2, 3] = (3.0, np.log(0.2), np.log(0.3))  # strongest: 80 x 150 px box at (100, 175)
    pred[9, 9] = (2.0, np.log(0.01), np.log(0.01))  # tiny, at the corner
    windows = proposals(pred, 400, 500, k=2).reshape(2, len(MARGINS), 4)
    np.testing.assert_array_equal(windows[0, MARGINS.index(1.0)], (100, 60, 250, 140))
    x0, y0, x1, y1 = windows[1].T
    assert np.all((x0 >= 0) & (y0 >= 0) & (x1 <= 500) & (y1 <= 400))
    assert np.all((x1 - x0 >= MIN_SIDE) & (y1 - y0 >= MIN_SIDE))
