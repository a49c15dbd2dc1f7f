"""Evaluation with pycocotools: AP, AP50, AP75, APs, APm, APl and AP per class.

``evaluate`` validates a checkpoint with Ultralytics and scores the boxes with
pycocotools; ``coco_metrics`` scores any COCO-format detections against a ground truth.
"""
from scsa_yolo.eval.coco import STAT_NAMES, CocoMetrics, coco_metrics
from scsa_yolo.eval.evaluate import EvalError, EvalResult, evaluate, resolve_weights

__all__ = ["STAT_NAMES", "CocoMetrics", "EvalError", "EvalResult", "coco_metrics", "evaluate", "resolve_weights"]
