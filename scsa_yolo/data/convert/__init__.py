"""Reading source files into boxes: ``recipes/`` (one per dataset, found by name),
``boxes`` (the box every recipe emits, clipped or dropped), ``events`` (the conversion log:
every change, counted) and ``images`` (image suffixes, sizes from headers, placing files).

Uses :mod:`scsa_yolo.data.fetch`; knows nothing of the prepared layout.
"""
