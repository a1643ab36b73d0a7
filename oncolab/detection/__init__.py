"""Detection: boxes, IoU, NMS and mAP from first principles; YOLO through ultralytics; ROI crops.

Chapter 3 ("Finding the tumor: object detection") teaches all of it. The complete system
(chapter 12) detects the lesion with :class:`YoloDetector` and hands :func:`roi_crops` to the
image encoders; its hand-made stages find the lesion with :class:`LesionFinder`, which reads
the radiograph only.

Importing this subpackage does not import ultralytics; :class:`YoloDetector` does, on first use.
"""

from .boxes import (
    BOX_FORMATS,
    COCO_IOU_THRESHOLDS,
    DetectionEvaluation,
    Detections,
    average_precision,
    box_area,
    box_iou,
    check_boxes,
    convert_boxes,
    evaluate_detections,
    generalized_box_iou,
    match_detections,
    nms,
    precision_recall_curve,
)
from .crops import centred_window, crop_window, roi_crop, roi_crops
from .finder import LesionFinder
from .plotting import plot_detection_grid, plot_detections
from .yolo import DEFAULTS, ValidationRun, YoloDetector, check_yolo_dataset, ultralytics_map

__all__ = [
    "BOX_FORMATS", "COCO_IOU_THRESHOLDS", "DEFAULTS", "DetectionEvaluation", "Detections", "LesionFinder",
    "ValidationRun",
    "YoloDetector", "average_precision", "box_area", "box_iou", "check_boxes", "check_yolo_dataset",
    "centred_window", "convert_boxes", "crop_window", "evaluate_detections", "generalized_box_iou", "match_detections", "nms",
    "plot_detection_grid", "plot_detections", "precision_recall_curve", "roi_crop", "roi_crops",
    "ultralytics_map",
]
