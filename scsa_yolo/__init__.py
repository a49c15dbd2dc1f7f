"""scsa-yolo: SCSA and rival attentions as plug-in layers for Ultralytics YOLO.

Importing this package is cheap: it does not import torch or ultralytics. The layers live
in :mod:`scsa_yolo.nn`, the Ultralytics glue in :mod:`scsa_yolo.integration`.
"""

__version__ = "0.1.0"
