"""Whole-photo inference: window geometry, inputs, aggregation, batching, result rows."""

from __future__ import annotations

import numpy as np
import pytest
from beam_support import BACKGROUND_CLASSES, IMAGE_SIZE, make_background_bundle
from image_files import encode
from PIL import Image

from logo_batch.inference import predict, whole_photo
from logo_batch.inference.bundle import load_bundle
from logo_batch.inference.predict import (
    UNKNOWN_LABEL,
    error_prediction,
    photo_to_prediction,
    scores_to_prediction,
)
from logo_batch.inference.preprocessing import (
    load_image,
    preprocess_image_file,
    resize_array,
    resize_image,
)
from logo_batch.inference.whole_photo import (
    DEFAULT_GRID,
    PhotoScores,
    WindowStack,
    aggregate,
    classify_photos,
    photo_stack,
    photo_windows,
    score_window_stacks,
    window_inputs,
)
from logo_batch.result_csv import CSV_COLUMNS


def _covered(windows: np.ndarray, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    for x0, y0, x1, y1 in windows:
        mask[y0:y1, x0:x1] = True
    return mask


@pytest.mark.parametrize("height, width", [(300, 400), (480, 640), (101, 37), (3, 2), (1, 1)])
def test_windows_count_bounds_and_coverage(height, width):
    windows = photo_windows(height, width)
    assert windows.dtype == np.int32 and windows.shape == (14, 4)
    x0, y0, x1, y1 = windows.T
    assert (x0 >= 0).all() and (y0 >= 0).all() and (x1 <= width).all() and (y1 <= height).all()
    assert (x1 - x0 >= 1).all() and (y1 - y0 >= 1).all()  # at least one pixel
    assert windows[0].tolist() == [0, 0, width, height]  # the whole photo first
    start = 0
    for n, fraction in DEFAULT_GRID:  # each level: n x n equal windows, edge to edge
        level = windows[start : start + n * n]
        start += n * n
        sizes = {(int(b[2] - b[0]), int(b[3] - b[1])) for b in level}
        assert len(sizes) == 1
        ((w, h),) = sizes
        assert w == max(1, round(fraction * width)) or w == width
        assert h == max(1, round(fraction * height)) or h == height
        assert level[:, 0].min() == 0 and level[:, 2].max() == width
        assert level[:, 1].min() == 0 and level[:, 3].max() == height
        assert _covered(level, height, width).all()  # n * f >= 1: no gaps
        assert len({tuple(b) for b in level}) == n * n or min(width, height) < n


def test_window_geometry_of_a_400x300_photo_and_custom_grids():
    windows = photo_windows(300, 400)
    assert windows[1:5].tolist() == [
        [0, 0, 240, 180], [160, 0, 400, 180], [0, 120, 240, 300], [160, 120, 400, 300],
    ]  # fmt: skip
    assert windows[5:8].tolist() == [[0, 0, 160, 120], [120, 0, 280, 120], [240, 0, 400, 120]]
    assert photo_windows(300, 400, ((1, 1.0),)).tolist() == [[0, 0, 400, 300]]
    assert len(photo_windows(300, 400, ((4, 0.3), (1, 0.5)))) == 17
    assert photo_windows(300, 400, ((1, 0.5),)).tolist() == [[100, 75, 300, 225]]  # centred
    for bad in ((), ((0, 0.5),), ((2, 0.0),), ((2, 1.5),)):
        with pytest.raises(ValueError):
            photo_windows(300, 400, bad)


def test_whole_photo_window_is_the_single_view_input(tmp_path):
    path = tmp_path / "photo.jpg"
    rng = np.random.default_rng(3)
    path.write_bytes(encode(Image.fromarray(rng.integers(0, 256, (90, 130, 3), np.uint8)), "JPEG"))
    stack = photo_stack(load_image(path), IMAGE_SIZE)
    assert stack.inputs.shape == (14, IMAGE_SIZE, IMAGE_SIZE, 3)
    assert stack.inputs.dtype == np.float32
    # Windows are cut from the full-size decode, the whole-photo window too. The
    # single-view input decodes a JPEG DCT-downscaled (here by 2: 90 >= 2 x 24), so it
    # is the same picture at a slightly different sharpness, not the same tensor.
    image = load_image(path)
    np.testing.assert_array_equal(stack.inputs[0], resize_array(image, IMAGE_SIZE))
    # ... and what training's resize gives, to 0.01 of a grey level
    np.testing.assert_allclose(stack.inputs[0], resize_image(image, IMAGE_SIZE).numpy(), atol=0.01)
    single = preprocess_image_file(path, IMAGE_SIZE)
    assert not np.array_equal(stack.inputs[0], single)
    assert np.abs(stack.inputs[0] - single).mean() < 8.0
    # Every window is its crop resized the way training resizes.
    x0, y0, x1, y1 = stack.windows[7]
    np.testing.assert_allclose(
        stack.inputs[7], resize_image(image[y0:y1, x0:x1], IMAGE_SIZE).numpy(), atol=0.01
    )
    assert window_inputs(image, stack.windows[:2], 8).shape == (2, 8, 8, 3)


def test_aggregate_takes_the_max_per_brand_and_its_box_without_the_background():
    windows = np.array([[0, 0, 100, 80], [0, 0, 60, 48], [40, 32, 100, 80]], np.int32)
    names = ["adidas", "apple", "none", "bmw"]  # the background needs not be last
    scores = np.array(
        [
            [0.1, 0.1, 0.7, 0.1],  # whole photo: mostly background
            [0.6, 0.1, 0.2, 0.1],  # adidas in the top-left window
            [0.1, 0.05, 0.9, 0.3],  # background highest of all, bmw best here
        ],
        np.float32,
    )
    photo = aggregate(scores, windows, names, "none")
    np.testing.assert_allclose(photo.brand_scores, [0.6, 0.1, 0.3])
    assert photo.boxes.tolist() == [[0, 0, 60, 48], [0, 0, 100, 80], [40, 32, 100, 80]]
    assert photo.background == pytest.approx(0.7)  # the whole-photo window's, not the max
    # A model without a background class: every column is a brand.
    plain = aggregate(scores, windows, ["a", "b", "c", "d"], None)
    np.testing.assert_allclose(plain.brand_scores, [0.6, 0.1, 0.9, 0.3])
    assert plain.boxes[2].tolist() == [40, 32, 100, 80] and plain.background == 0.0
    with pytest.raises(ValueError, match="not one of the class names"):
        aggregate(scores, windows, ["a", "b", "c", "d"], "none")
    with pytest.raises(ValueError, match="do not match"):
        aggregate(scores[:, :3], windows, names, "none")


class _RowModel:
    """A stand-in model: each input's scores depend on that input only (so any batching
    gives bit-identical results); records the size of every call."""

    def __init__(self, classes: int):
        self.classes = classes
        self.calls: list[int] = []

    def __call__(self, images, training=False):
        images = np.asarray(images, np.float64)
        self.calls.append(len(images))
        features = images.reshape(len(images), -1, 3).mean(axis=1)  # mean colour
        logits = np.concatenate([features, features[:, :1] * 0.5], axis=1)[:, : self.classes]
        logits = logits / 40.0 + np.arange(self.classes) * 0.01
        exp = np.exp(logits - logits.max(axis=1, keepdims=True))
        return (exp / exp.sum(axis=1, keepdims=True)).astype(np.float32)


def _photos() -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    shapes = [(30, 40), (50, 20), (7, 9), (64, 64), (12, 90)]
    return [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for h, w in shapes]


@pytest.mark.parametrize("batch_size", [1, 5, 14, 27, 64, 1000])
def test_results_do_not_depend_on_the_batch_size(batch_size):
    names = BACKGROUND_CLASSES
    reference = classify_photos(_RowModel(4), _photos(), 16, names, "none", batch_size=10_000)
    model = _RowModel(4)
    got = classify_photos(model, _photos(), 16, names, "none", batch_size=batch_size)
    assert len(got) == len(reference) == 5
    for a, b in zip(got, reference, strict=True):
        np.testing.assert_array_equal(a.brand_scores, b.brand_scores)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert a.background == b.background
    total = 14 * 5
    assert max(model.calls) <= batch_size and sum(model.calls) == total
    # Photos go in groups of batch_size: windows of many photos per call.
    groups = [min(batch_size, 5 - start) for start in range(0, 5, batch_size)]
    assert len(model.calls) == sum(-(-14 * g // batch_size) for g in groups)


def test_classify_photos_is_aggregate_of_each_photos_windows():
    model = _RowModel(4)
    photos = _photos()
    got = classify_photos(model, photos, 16, BACKGROUND_CLASSES, "none", grid=((1, 1.0), (2, 0.5)))
    for photo, result in zip(photos, got, strict=True):
        stack = photo_stack(photo, 16, ((1, 1.0), (2, 0.5)))
        assert len(stack.windows) == 5
        want = aggregate(model(stack.inputs), stack.windows, BACKGROUND_CLASSES, "none")
        np.testing.assert_array_equal(result.brand_scores, want.brand_scores)
        np.testing.assert_array_equal(result.boxes, want.boxes)
    assert classify_photos(model, [], 16, BACKGROUND_CLASSES, "none") == []


def test_score_window_stacks_reads_stacks_lazily():
    model, seen = _RowModel(4), []

    def stacks():
        for index, photo in enumerate(_photos()):
            seen.append(index)
            yield photo_stack(photo, 8)

    results = score_window_stacks(model, stacks(), BACKGROUND_CLASSES, "none", batch_size=2)
    first = next(results)
    # One group of batch_size photos read, their 28 windows in 14 calls of 2.
    assert isinstance(first, PhotoScores) and seen == [0, 1] and model.calls == [2] * 14
    assert len(list(results)) == 4
    with pytest.raises(ValueError):
        WindowStack(np.zeros((8, 8, 3), np.uint8), np.zeros((0, 4), np.int32), 8)


def test_a_keras_bundle_through_classify_photos(tmp_path):
    bundle = load_bundle(make_background_bundle(tmp_path / "bg"))
    photos = _photos()[:3]
    results = classify_photos(
        bundle.model, photos, bundle.image_size, bundle.class_names, "none", batch_size=8
    )
    for photo, result in zip(photos, results, strict=True):
        stack = photo_stack(photo, bundle.image_size)
        scores = predict.predict_scores(bundle.model, stack.inputs)
        want = aggregate(scores, stack.windows, bundle.class_names, "none")
        np.testing.assert_allclose(result.brand_scores, want.brand_scores, atol=2e-6)
        assert result.background == pytest.approx(float(scores[0, 3]), abs=2e-6)
        assert result.brand_scores.shape == (3,) and result.boxes.shape == (3, 4)


def test_photo_to_prediction_rows():
    photo = PhotoScores(
        brand_scores=np.array([0.2, 0.7, 0.4], np.float32),
        boxes=np.array([[0, 0, 5, 5], [10, 20, 30, 40], [1, 2, 3, 4]], np.int32),
        background=0.25,
    )
    row = photo_to_prediction("/p.jpg", photo, BACKGROUND_CLASSES, "none", top_k=2)
    assert (row.label, row.top_labels, row.box, row.mode) == (
        "apple", ["apple", "cocacola"], (10, 20, 30, 40), "whole",
    )  # fmt: skip
    assert row.to_row()["box"] == "10 20 30 40" and row.to_row()["mode"] == "whole"
    below = photo_to_prediction("/p.jpg", photo, BACKGROUND_CLASSES, "none", min_score=0.8)
    assert below.label == "none" and below.top_labels[0] == "apple"
    assert "none" not in below.top_labels and below.box == (10, 20, 30, 40)
    old = photo_to_prediction("/p.jpg", photo, ["a", "b", "c"], None, min_score=0.8)
    assert old.label == UNKNOWN_LABEL
    single = scores_to_prediction("/q.jpg", np.array([0.3, 0.7]), ["x", "y"]).to_row()
    assert (single["box"], single["mode"]) == ("", "single")
    failed = error_prediction("/r.jpg", "corrupt", "whole").to_row()
    assert (failed["box"], failed["mode"], failed["label"]) == ("", "whole", "")


def test_csv_columns_keep_their_order_and_end_with_box_and_mode():
    assert CSV_COLUMNS == (
        "path", "label", "score", "top_labels", "top_scores", "error", "box", "mode",
    )  # fmt: skip
    assert tuple(scores_to_prediction("/a", np.array([1.0]), ["x"]).to_row()) == CSV_COLUMNS


def test_resolve_mode_and_threshold(tmp_path):
    from logo_batch.inference.bundle import BundleMetadata

    old = BundleMetadata(["a", "b"], 24, "tiny", rejection_threshold=0.4)
    new = BundleMetadata(
        ["a", "b", "none"], 24, "tiny", rejection_threshold=0.3, background_class="none"
    )
    assert predict.resolve_mode("auto", old) == "single"
    assert predict.resolve_mode("auto", new) == "whole"
    assert predict.resolve_mode("whole", old) == "whole"
    assert predict.resolve_mode("single", new) == "single"
    with pytest.raises(ValueError, match="mode must be one of"):
        predict.resolve_mode("tiles", new)
    assert predict.effective_min_score(None, "whole", new) == 0.3
    assert predict.effective_min_score(None, "single", old) is None
    assert predict.effective_min_score(0.5, "whole", new) == 0.5
    # The one rule of predict, evaluate (--config crops: the images are crops) and Beam.
    assert predict.resolve_mode("auto", new, crops=True) == "single"
    assert predict.resolve_mode("auto", old, crops=False) == "single"
    assert predict.resolve_mode("whole", new, crops=True) == "whole"  # asked for
    # --min-score bundle: the bundle's threshold in either mode.
    assert predict.effective_min_score("bundle", "single", old) == 0.4
    assert predict.effective_min_score("bundle", "whole", new) == 0.3
    assert whole_photo.brand_names(new.class_names, "none") == ["a", "b"]


# ------------------------------------------------------------------ the cascade


def test_a_cascade_that_settles_nothing_gives_the_full_grid():
    never = whole_photo.Cascade(accept=2.0, reject=2.0)
    full = classify_photos(_RowModel(4), _photos(), 16, BACKGROUND_CLASSES, "none")
    model = _RowModel(4)
    got = classify_photos(model, _photos(), 16, BACKGROUND_CLASSES, "none", cascade=never)
    for a, b in zip(got, full, strict=True):
        np.testing.assert_array_equal(a.brand_scores, b.brand_scores)
        np.testing.assert_array_equal(a.boxes, b.boxes)
        assert a.windows_scored == 14
    assert sum(model.calls) == 14 * 5


def test_a_settled_photo_keeps_its_whole_photo_windows_answer_and_costs_one_input():
    model = _RowModel(4)
    always = whole_photo.Cascade(accept=0.0, reject=2.0)
    got = classify_photos(model, _photos(), 16, BACKGROUND_CLASSES, "none", cascade=always)
    assert sum(model.calls) == 5 and all(r.windows_scored == 1 for r in got)
    for photo, result in zip(_photos(), got, strict=True):
        whole = _RowModel(4)(resize_array(photo, 16)[None])[0]
        np.testing.assert_allclose(result.brand_scores, whole[:3], rtol=1e-6)
        np.testing.assert_allclose(result.whole, whole, rtol=1e-6)
        assert tuple(result.boxes[0]) == (0, 0, photo.shape[1], photo.shape[0])


def test_the_cascade_settles_by_brand_or_by_background():
    cascade = whole_photo.Cascade(accept=0.8, reject=0.9)
    assert cascade.decided(np.array([0.85, 0.1, 0.05]), background_index=2)
    assert cascade.decided(np.array([0.05, 0.04, 0.91]), background_index=2)
    assert not cascade.decided(np.array([0.5, 0.1, 0.4]), background_index=2)
    assert whole_photo.Cascade.of(object()) is None  # metadata without whole_photo settings


def _scores(whole, grid) -> whole_photo.PhotoScores:
    grid = np.asarray(grid, np.float32)
    return whole_photo.PhotoScores(
        brand_scores=grid,
        boxes=np.zeros((len(grid), 4), np.int32),
        background=float(whole[-1]),
        whole=np.asarray(whole, np.float32),
    )


def test_choose_cascade_changes_no_validation_answer():
    from logo_batch.evaluation.photo_metrics import choose_cascade

    threshold = 0.4
    photos = [
        _scores([0.9, 0.05, 0.05], [0.9, 0.2]),  # whole and grid agree: brand 0
        _scores([0.6, 0.1, 0.3], [0.6, 0.7]),  # whole says 0 at 0.6, the grid 1: differ
        _scores([0.1, 0.1, 0.8], [0.1, 0.5]),  # small logo: only the grid finds brand 1
    ]
    labels = np.array([0, 1, 1])
    negatives = [_scores([0.02, 0.03, 0.95], [0.1, 0.2])]
    cascade = choose_cascade(photos, labels, negatives, threshold, background_index=2)
    assert cascade.accept > 0.6 and cascade.accept <= 0.9  # above the differing 0.6
    assert cascade.reject > 0.8  # above the small-logo photo's background 0.8
    settled = [cascade.decided(p.whole, 2) for p in [*photos, *negatives]]
    assert settled == [True, False, False, True]


def test_every_window_is_its_crop_resized_bit_for_bit():
    rng = np.random.default_rng(5)
    image = rng.integers(0, 256, (77, 103, 3), np.uint8)
    stack = photo_stack(image, IMAGE_SIZE)
    inputs = stack.inputs
    for index, (x0, y0, x1, y1) in enumerate(stack.windows):
        np.testing.assert_array_equal(inputs[index], resize_array(image[y0:y1, x0:x1], IMAGE_SIZE))
    np.testing.assert_array_equal(stack.window_inputs([9, 2]), inputs[[9, 2]])
    assert stack.window_inputs([]).shape == (0, IMAGE_SIZE, IMAGE_SIZE, 3)
