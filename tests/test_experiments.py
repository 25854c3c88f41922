"""The research probes' helpers that decide what a figure means (experiments/)."""

from __future__ import annotations

import numpy as np


def test_proposal_targets_mark_the_cells_of_each_box_and_skip_empty_boxes():
    from experiments.probe_proposals import targets

    boxes = np.array([[0.1, 0.2, 0.3, 0.5], [0.5, 0.5, 0.5, 0.6], [0.8, 0.8, 0.82, 0.81]])
    truth = targets([boxes], 10)[0]
    logo = truth[..., 0].astype(bool)
    expected = np.zeros((10, 10), bool)
    expected[1:3, 2:5] = True  # cell centres inside the first box
    expected[8, 8] = True  # a box smaller than a cell still marks the cell of its centre
    np.testing.assert_array_equal(logo, expected)  # the zero-area box marks nothing
    np.testing.assert_allclose(truth[2, 3, 1:], np.log([0.2, 0.3]), rtol=1e-6)


def test_proposals_put_the_predicted_box_around_the_strongest_peaks_inside_the_photo():
    from experiments.probe_proposals import MARGINS, MIN_SIDE, proposals

    pred = np.full((10, 10, 3), -5.0)
    pred[2, 3] = (3.0, np.log(0.2), np.log(0.3))  # strongest: 80 x 150 px box at (100, 175)
    pred[9, 9] = (2.0, np.log(0.01), np.log(0.01))  # tiny, at the corner
    windows = proposals(pred, 400, 500, k=2).reshape(2, len(MARGINS), 4)
    np.testing.assert_array_equal(windows[0, MARGINS.index(1.0)], (100, 60, 250, 140))
    x0, y0, x1, y1 = windows[1].T
    assert np.all((x0 >= 0) & (y0 >= 0) & (x1 <= 500) & (y1 <= 400))
    assert np.all((x1 - x0 >= MIN_SIDE) & (y1 - y0 >= MIN_SIDE))
