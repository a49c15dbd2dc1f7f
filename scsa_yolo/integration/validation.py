"""The one change we make to Ultralytics' validation: keep every prediction for pycocotools.

Touch points (supported: ultralytics >=8.4,<8.5), covered by
``tests/test_integration_training.py``:

* ``DetectionValidator.pred_to_json(predn, pbatch)`` -- called per image when
  ``save_json=True``, with the boxes already rescaled to the original pixels
  (``predn["bboxes"]`` xyxy, ``predn["conf"]``, ``predn["cls"]``; ``pbatch["im_file"]``).
  We record them with the full image path instead of Ultralytics' stem-based ids.
* ``eval_json(stats)`` -- Ultralytics' own JSON evaluation (it needs faster-coco-eval); we
  skip it, pycocotools scores the boxes afterwards.
* ``finalize_metrics()`` -- runs once every batch is collected; we read the list of images
  the dataloader held (``self.dataloader.dataset.im_files``) and switch ``save_json`` off so
  that Ultralytics does not end with "Results saved to" a folder holding nothing of ours.
"""
from __future__ import annotations

from pathlib import Path


def collecting_validator(store: list, loaded: list) -> type:
    """A ``DetectionValidator`` subclass (for ``model.val(validator=...)``, with
    ``save_json=True``) that appends ``(image path, class, [x, y, w, h], score)`` per box to
    ``store`` and the path of every image it loaded to ``loaded``."""
    from ultralytics.models.yolo.detect import DetectionValidator
    from ultralytics.utils import ops

    class CollectingValidator(DetectionValidator):
        def pred_to_json(self, predn, pbatch):
            image = str(Path(pbatch["im_file"]).resolve())
            boxes = ops.xyxy2ltwh(predn["bboxes"]).tolist()
            for box, score, cls in zip(boxes, predn["conf"].tolist(), predn["cls"].tolist()):
                store.append((image, int(cls), box, float(score)))

        def eval_json(self, stats):
            return stats

        def finalize_metrics(self):
            loaded.extend(str(Path(f).resolve()) for f in self.dataloader.dataset.im_files)
            super().finalize_metrics()
            self.args.save_json = False

    return CollectingValidator


__all__ = ["collecting_validator"]
