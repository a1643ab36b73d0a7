"""oncolab.detection.crops (ROI crops) and the detection figures."""

from __future__ import annotations

import numpy as np
import pytest

from oncolab.detection import (
    Detections,
    crop_window,
    plot_detection_grid,
    plot_detections,
    roi_crop,
    roi_crops,
)


def ramp(h: int = 60, w: int = 80) -> np.ndarray:
    return (np.arange(h * w).reshape(h, w) % 251).astype(np.uint8)


def test_crop_is_the_box_region_with_margin():
    img = ramp()
    box = [20, 10, 40, 30]                      # 20 x 20
    # margin 0.25 -> side 30, centred on (30, 20): window x 15..45, y 5..35
    assert crop_window(box, img.shape, margin=0.25) == (15, 5, 45, 35)
    crop = roi_crop(img, box, size=30, margin=0.25)
    np.testing.assert_array_equal(crop, img[5:35, 15:45])
    assert roi_crop(img, box, size=64, margin=0.25).shape == (64, 64)


def test_crop_is_square_and_pads_outside_the_image():
    img = np.full((50, 50), 200, np.uint8)
    crop = roi_crop(img, [0, 0, 10, 20], size=20, margin=0.0)   # square side 20 centred on (5, 10)
    assert crop.shape == (20, 20)
    assert (crop[:, :5] == 0).all() and (crop[:, 5:] == 200).all()


def test_colour_crops_keep_channels():
    img = np.dstack([ramp(), ramp(), ramp()])
    assert roi_crop(img, [10, 10, 30, 40], size=32).shape == (32, 32, 3)


def test_batch_crops_fall_back_to_the_whole_image_and_flag_it():
    img = ramp()
    dets = [Detections([[20, 10, 40, 30]], [0.9], [0]), Detections(np.zeros((0, 4)), [], []),
            None, [20, 10, 40, 30], Detections([[20, 10, 40, 30]], [0.1], [0])]
    crops, fell_back = roi_crops([img] * 5, dets, size=32, margin=0.1, min_score=0.25)
    assert crops.shape == (5, 32, 32)
    np.testing.assert_array_equal(fell_back, [False, True, True, False, True])
    whole = roi_crop(img, None, size=32)
    np.testing.assert_array_equal(crops[1], whole)
    np.testing.assert_array_equal(crops[0], crops[3])


def test_crop_bad_input():
    img = ramp()
    with pytest.raises(TypeError, match="uint8"):
        roi_crop(img.astype(float), [0, 0, 5, 5])
    with pytest.raises(ValueError, match=r"shape \(H, W\)"):
        roi_crop(np.zeros((10, 10, 4), np.uint8), [0, 0, 5, 5])
    with pytest.raises(ValueError, match="outside the image"):
        roi_crop(img, [100, 100, 120, 120])
    with pytest.raises(ValueError, match="margin"):
        roi_crop(img, [0, 0, 5, 5], margin=-1)
    with pytest.raises(ValueError, match="size"):
        roi_crop(img, [0, 0, 5, 5], size=0)
    with pytest.raises(ValueError, match="one entry per image"):
        roi_crops([img, img], [None])


def test_plots_draw_boxes_and_iou():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    img = ramp()
    det = Detections([[22, 10, 40, 30], [0, 0, 5, 5]], [0.8, 0.3], [0, 0])
    ax = plot_detections(img, [20, 10, 40, 30], det, max_boxes=2)
    assert len(ax.patches) == 3
    assert "IoU 0.90" in ax.get_title()
    fig = plot_detection_grid([img, img, img], [[20, 10, 40, 30]] * 3, [det, det, Detections(np.zeros((0, 4)), [], [])],
                              ncols=2)
    assert "missed" in fig.axes[2].get_title()
    plt.close("all")
    with pytest.raises(ValueError, match="one per image"):
        plot_detection_grid([img], [[0, 0, 1, 1]] * 2)
