"""Unit tests of annotation parsing, split assignment and crop windows."""

import pytest

from tfds_flickr27 import annotations as ann
from tfds_flickr27 import splits
from tfds_flickr27.crops import crop_window

TRAINING = (
    "a.jpg Pepsi 1 10 10 50 50 \r\n"
    "a.jpg Cocacola 1 60 60 70 70 \r\n"
    "b.jpg RedBull 1 3 197 3 197 \r\n"
    "a.jpg Pepsi 2 10 10 50 50 \r\n"
    "a.jpg Cocacola 2 60 60 70 70 \r\n"
    "c.jpg Yahoo 2 0 0 20 5 \r\n"
)


def test_training_dedups_cumulative_subsets_and_drops_zero_area():
    parsed = ann.parse_training(TRAINING.encode())
    assert parsed.rows == 6
    assert [(b.filename, b.label) for b in parsed.boxes] == [
        ("a.jpg", "Pepsi"),
        ("a.jpg", "Cocacola"),
        ("c.jpg", "Yahoo"),
    ]
    assert parsed.zero_area == [ann.Box("b.jpg", "RedBull", 3, 197, 3, 197)]
    assert parsed.labels == {
        "a.jpg": ["Cocacola", "Pepsi"],
        "b.jpg": ["RedBull"],
        "c.jpg": ["Yahoo"],
    }


def test_primary_label_is_the_largest_box_and_survives_zero_area():
    parsed = ann.parse_training(TRAINING)
    a_boxes = [b for b in parsed.boxes if b.filename == "a.jpg"]
    assert ann.primary_label(a_boxes, parsed.labels["a.jpg"]) == "Pepsi"
    assert ann.primary_label([], parsed.labels["b.jpg"]) == "RedBull"


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("a.jpg Pepsi 1 10 10 50 \r\n", "expected 7 fields"),
        ("a.jpg Pepsy 1 10 10 50 50 \r\n", "unknown class 'Pepsy'"),
        ("a.jpg Pepsi 1 10 x 50 50 \r\n", "must be integers"),
        ("a.jpg Pepsi 1 50 10 10 50 \r\n", "x1 <= x2"),
    ],
)
def test_malformed_training_line_names_file_line_and_content(line, problem):
    with pytest.raises(ann.AnnotationError) as error:
        ann.parse_training(TRAINING + line, "train.txt")
    message = str(error.value)
    assert "train.txt, line 7" in message and problem in message and line.strip() in message


def test_query_tab_layout_and_none():
    parsed = ann.parse_query("q1.jpg\tAdidas\r\nq2.jpg\tnone\r\n\r\n")
    assert parsed == {"q1.jpg": "Adidas", "q2.jpg": "none"}
    with pytest.raises(ann.AnnotationError, match="query.txt, line 2"):
        ann.parse_query("q1.jpg\tAdidas\r\nq2.jpg Adidas\r\n", "query.txt")


def test_label_names_are_the_27_classes_then_none():
    assert len(ann.CLASS_NAMES) == 27 == len(set(ann.CLASS_NAMES))
    assert ann.LABEL_NAMES[:27] == ann.CLASS_NAMES and ann.LABEL_NAMES[27] == "none"


def test_assign_is_stratified_deterministic_and_honours_forced_groups():
    labels = {f"g{i}": "Adidas" if i < 20 else "Apple" for i in range(40)}
    forced = {"g0": "test", "g1": splits.EXCLUDED}
    fractions = [("validation", 0.15), ("test", 0.15)]
    first = splits.assign(labels, fractions, forced=forced)
    assert first == splits.assign(dict(reversed(labels.items())), fractions, forced=forced)
    assert first["g0"] == "test" and first["g1"] == splits.EXCLUDED
    for label in ("Adidas", "Apple"):
        counts = [
            sum(first[g] == split and labels[g] == label for g in labels)
            for split in ("train", "validation", "test")
        ]
        # Adidas: 19 groups count (g1 excluded): 3 validation, 3 test incl. the forced g0.
        assert counts == ([13, 3, 3] if label == "Adidas" else [14, 3, 3])
    assert splits.assign(labels, fractions, salt="other") != first


def test_crop_window_is_square_with_margin_and_stays_inside():
    box = ann.Box("a.jpg", "Yahoo", 100, 100, 200, 120)  # 100 x 20
    assert crop_window(box, (500, 400), 0.15, square=True) == (85, 45, 215, 175)
    assert crop_window(box, (500, 400), 0.0, square=False) == (100, 100, 200, 120)
    # Near the border the window shifts inside instead of shrinking.
    edge = ann.Box("a.jpg", "Yahoo", 0, 0, 40, 40)
    assert crop_window(edge, (500, 400), 0.25, square=True) == (0, 0, 60, 60)
    # A window larger than the image is clipped to it.
    assert crop_window(edge, (50, 45), 0.5, square=True) == (0, 0, 50, 45)
