"""Evaluation with pycocotools: AP, AP50, AP75, APs, APm, APl and AP per class, for boxes
and instance masks; top-1, top-5 and accuracy per class for classifiers.

``evaluate`` validates a checkpoint with Ultralytics and scores it (boxes, a segmentation
model's masks, or a classifier's classes); ``coco_metrics`` scores any COCO-format
detections against a ground truth; ``classification_metrics`` scores ranked classes.
"""
from scsa_yolo.eval.classify import ClassificationMetrics, classification_metrics
from scsa_yolo.eval.coco import STAT_NAMES, CocoMetrics, coco_metrics
from scsa_yolo.eval.evaluate import EvalError, EvalResult, evaluate, resolve_weights

__all__ = ["STAT_NAMES", "ClassificationMetrics", "CocoMetrics", "EvalError", "EvalResult", "classification_metrics",
           "coco_metrics", "evaluate", "resolve_weights"]
