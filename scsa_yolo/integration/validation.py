"""The one change we make to Ultralytics' validation: keep every prediction for our scoring.

Touch points (supported: ultralytics >=8.4,<8.5), covered by
``tests/test_integration_training.py`` and ``tests/test_eval_tasks.py``:

* ``DetectionValidator.pred_to_json(predn, pbatch)`` -- called per image when
  ``save_json=True``, with the boxes already rescaled to the original pixels
  (``predn["bboxes"]`` xyxy, ``predn["conf"]``, ``predn["cls"]``; ``pbatch["im_file"]``).
  We record them with the full image path instead of Ultralytics' stem-based ids.
  ``SegmentationValidator`` calls it with ``predn["masks"]`` too: (N, H0, W0) uint8 masks
  at the original image's resolution, which we RLE-encode as pycocotools reads them.
* ``SegmentationValidator.init_metrics(model)`` -- with ``save_json`` it would ask for
  faster-coco-eval (an install, online); we let it run without and then choose its
  full-resolution mask path (``ops.process_mask_native``) as ``save_json`` does.
* ``eval_json(stats)`` -- Ultralytics' own JSON evaluation (it needs faster-coco-eval); we
  skip it, pycocotools scores the boxes and masks afterwards.
* ``finalize_metrics()`` -- runs once every batch is collected; we read the list of images
  the dataloader held (``self.dataloader.dataset.im_files``) and switch ``save_json`` off so
  that Ultralytics does not end with "Results saved to" a folder holding nothing of ours.
* ``ClassificationValidator.finalize_metrics()`` -- by then ``self.pred`` holds each image's
  top classes (most likely first) and ``self.targets`` the true ones, batch by batch; the
  dataset's ``samples`` are the images it read.
"""
from __future__ import annotations

from pathlib import Path


def _collecting(base: type, store: list, loaded: list, masks: bool) -> type:
    """``base`` (DetectionValidator or SegmentationValidator) that keeps its predictions."""
    from ultralytics.utils import ops

    if masks:
        import numpy as np
        from pycocotools import mask as mask_utils

    class Collecting(base):
        def init_metrics(self, model):
            if not masks:
                return super().init_metrics(model)
            self.args.save_json = False  # no faster-coco-eval: pycocotools scores our records
            super().init_metrics(model)
            self.args.save_json = True
            self.process = ops.process_mask_native  # masks at full resolution, as for Ultralytics' own JSON

        def pred_to_json(self, predn, pbatch):
            image = str(Path(pbatch["im_file"]).resolve())
            boxes = ops.xyxy2ltwh(predn["bboxes"]).tolist()
            found = zip(boxes, predn["conf"].tolist(), predn["cls"].tolist())
            if not masks:
                store.extend((image, int(cls), box, float(score)) for box, score, cls in found)
                return
            # (N, H0, W0) -> pycocotools' (H0, W0, N) in Fortran order; one compressed RLE per mask
            pixels = np.asfortranarray(predn["masks"].cpu().numpy().astype(np.uint8)
                                       .transpose(1, 2, 0))
            encoded = mask_utils.encode(pixels)
            for (box, score, cls), rle in zip(found, encoded):
                rle = {"size": [int(v) for v in rle["size"]], "counts": rle["counts"].decode("ascii")}
                store.append((image, int(cls), box, float(score), rle))

        def eval_json(self, stats):
            return stats

        def finalize_metrics(self):
            loaded.extend(str(Path(f).resolve()) for f in self.dataloader.dataset.im_files)
            super().finalize_metrics()
            self.args.save_json = False

    Collecting.__name__ = Collecting.__qualname__ = f"Collecting{base.__name__}"
    return Collecting


def collecting_validator(store: list, loaded: list) -> type:
    """A ``DetectionValidator`` subclass (for ``model.val(validator=...)``, with
    ``save_json=True``) that appends ``(image path, class, [x, y, w, h], score)`` per box to
    ``store`` and the path of every image it loaded to ``loaded``."""
    from ultralytics.models.yolo.detect import DetectionValidator

    return _collecting(DetectionValidator, store, loaded, masks=False)


def collecting_segmentation_validator(store: list, loaded: list) -> type:
    """A ``SegmentationValidator`` subclass (with ``save_json=True``) that appends
    ``(image path, class, [x, y, w, h], score, rle)`` per instance to ``store``, ``rle`` a
    COCO compressed RLE (``{"size": [H0, W0], "counts": str}``) of the mask at the original
    image's resolution, and the path of every image it loaded to ``loaded``."""
    from ultralytics.models.yolo.segment import SegmentationValidator

    return _collecting(SegmentationValidator, store, loaded, masks=True)


def collecting_classification_validator(store: dict) -> type:
    """A ``ClassificationValidator`` subclass that leaves in ``store``: ``targets`` (N,) the
    true class of each image, ``ranked`` (N, K) its K <= 5 most likely classes, most likely
    first, and ``images`` the files the dataset read."""
    import torch
    from ultralytics.models.yolo.classify import ClassificationValidator

    class CollectingClassificationValidator(ClassificationValidator):
        def finalize_metrics(self):
            store["targets"] = torch.cat(self.targets).numpy() if self.targets else []
            store["ranked"] = torch.cat(self.pred).numpy() if self.pred else []
            store["images"] = [str(Path(sample[0]).resolve()) for sample in self.dataloader.dataset.samples]
            super().finalize_metrics()

    return CollectingClassificationValidator


def count_flops(model, imgsz: int) -> float:
    """GFLOPs of ``model`` as Ultralytics' ``model.info()`` counts them (``get_flops``: forwards
    of its own on small stride-sized images, in the parameters' dtype, on their device). The
    final validation runs it on the GPU when AutoBackend fuses best.pt, so ``scsa-yolo
    warmup`` runs it too: those forwards are input kinds of their own for the fused kernels."""
    from ultralytics.utils.torch_utils import get_flops

    return get_flops(model, imgsz)


__all__ = ["collecting_classification_validator", "collecting_segmentation_validator", "collecting_validator",
           "count_flops"]
