"""The prepared dataset on disk: ``paths`` (``ROOT/NAME/...`` and ``--data`` resolution),
``writer`` (a conversion written atomically), ``ground_truth`` (COCO-format JSON) and
``manifest`` (what was written, and checking the files against it).

Uses :mod:`scsa_yolo.data.convert` (the writer consumes its conversions).
"""
