"""Benchmark datasets: official distributions -> Ultralytics layout + COCO ground truth.

Entry points: :func:`scsa_yolo.data.prepare.prepare_dataset` (``scsa-yolo data prepare``),
:func:`scsa_yolo.data.manifest.check_dataset` (``scsa-yolo data check``) and
:func:`scsa_yolo.data.paths.resolve_data` (``--data NAME``).

Modules, one job each: ``recipes/`` (what each dataset is and how to read it; the
synthetic sets' recipe draws them), ``download`` (resume + verify), ``archives`` (safe
extraction), ``sources`` (finding the files the user has), ``boxes`` (clip/drop), ``events`` (the conversion log), ``images``
(header probe, link/copy), ``writer`` (atomic layout + GT + manifest), ``manifest``
(checks), ``catalog`` (``data list``), ``paths`` and ``coco_gt`` (shared contracts).
Importing this package imports none of them.
"""
