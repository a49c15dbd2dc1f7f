"""Benchmark datasets: official distributions -> Ultralytics layout + COCO ground truth
(class folders for classification).

Entry points: :func:`scsa_yolo.data.prepare.prepare_dataset` (``scsa-yolo data prepare``)
and :func:`scsa_yolo.data.prepare.resolve_or_prepare` (``--data NAME``),
:func:`scsa_yolo.data.catalog.dataset_rows` (``scsa-yolo data list``),
:func:`scsa_yolo.data.layout.manifest.check_dataset` (``scsa-yolo data check``),
:func:`scsa_yolo.data.layout.paths.resolve_data` (a prepared dataset's data YAML, or its
folder for classification) and :func:`scsa_yolo.data.tasks.check_data_for_task` (whether a
dataset can train a segmentation or classification model).

One subpackage per job, in the order ``prepare`` runs them:

* ``fetch/``: getting the source files: ``download`` (resume + verify), ``archives`` (safe
  extraction), ``sources`` (finding the files the user has).
* ``convert/``: reading them: ``recipes/`` (what each dataset is and how to read it; the
  synthetic sets' recipes draw them), ``boxes`` (the box type, clip/drop), ``masks``
  (polygons: area, clipping, one outline per object), ``events`` (the conversion log),
  ``images`` (image suffixes, header probe, link/copy).
* ``layout/``: the prepared dataset on disk: ``paths`` (where everything lives),
  ``writer`` (atomic layout + ground truth + manifest), ``class_writer`` (class folders),
  ``ground_truth`` (COCO-format JSON, shared with :mod:`scsa_yolo.eval`), ``manifest``
  (reading and checking).

Imports run one way: ``layout`` uses ``convert``, ``convert`` uses ``fetch``, and none of
them imports ``prepare``, ``catalog`` or ``tasks`` here, which use all three. Importing this package
imports none of them.
"""
