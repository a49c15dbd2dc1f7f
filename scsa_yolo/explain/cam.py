"""Class activation maps from Ultralytics' own LayerCAM, with the detections drawn on them.

Ultralytics 8.4 runs LayerCAM when ``predict(visualize=True)``:
:func:`ultralytics.utils.plotting.class_activation_map` weights every position of the
feature maps entering the detection head by its positive gradient toward each kept
prediction's class score (up to 16 predictions above ``conf``, or the single best one),
normalises each prediction and level, keeps their element-wise maximum, and writes the
map blended 50/50 with the letterboxed input as ``<stem>_cam.jpg`` in the predictor's
save folder. This module calls exactly that, in a temporary folder, reads the overlay
back, maps it from the letterboxed input onto the original image
(:func:`ultralytics.utils.ops.scale_masks`) and draws the same call's detections on it
(:meth:`ultralytics.engine.results.Results.plot`).
"""

from __future__ import annotations

import logging
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from scsa_yolo.integration.inference import resize_to_image
from scsa_yolo.integration.training import quiet

from .gates import reference_path
from .inputs import Image
from .models import ExplainModel

__all__ = ["CamResult", "cam_with_detections"]


@dataclass
class CamResult:
    """LayerCAM overlay of one model on one image.

    Attributes:
        overlay: (H0, W0, 3) uint8 RGB, the original image's size: CAM blended with the
            image, the detections drawn on top.
        detections: how many boxes the model kept at ``conf``.
        classes: their class names, strongest first.
    """

    overlay: np.ndarray
    detections: int
    classes: list[str]


def cam_with_detections(model: ExplainModel, image: Image, imgsz: int, conf: float, device: str) -> CamResult:
    """Run ``predict(visualize=True)`` on one image and return its CAM with the detections.

    Raises:
        RuntimeError: Ultralytics wrote no CAM file (a model format without LayerCAM).
    """
    import cv2

    # quiet: no 'Saving ... (LayerCAM)' line per file (warnings still show)
    with tempfile.TemporaryDirectory(prefix="scsa-explain-cam-") as tmp, reference_path(), quiet(logging.WARNING):
        results = model.yolo.predict(
            source=str(image.path), visualize=True, imgsz=imgsz, conf=conf, device=device,
            project=tmp, name="cam", exist_ok=True, save=False, verbose=False,
        )
        written = sorted(Path(tmp, "cam").glob("*_cam.jpg"))
        if not written:
            raise RuntimeError(f"Ultralytics wrote no LayerCAM for {image.path} with {model.label}")
        cam_bgr = cv2.imread(str(written[0]), cv2.IMREAD_COLOR)
    result = results[0]
    h0, w0 = result.orig_shape
    tensor = torch.from_numpy(np.ascontiguousarray(cam_bgr.transpose(2, 0, 1)))[None].float()
    on_original = resize_to_image(tensor, (h0, w0))[0].clamp(0, 255).byte().permute(1, 2, 0).numpy()
    drawn = result.plot(img=np.ascontiguousarray(on_original), conf=True, line_width=1)
    boxes = result.boxes
    order = boxes.conf.argsort(descending=True).tolist() if boxes is not None and len(boxes) else []
    classes = [result.names[int(boxes.cls[i])] for i in order]
    return CamResult(np.ascontiguousarray(drawn[..., ::-1]), len(order), classes)
