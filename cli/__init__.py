"""The ``scsa-yolo`` command tree (installed as ``scsa_yolo.cli``)."""
