"""Getting a dataset's source files: ``download`` (resume, verify, refuse), ``archives`` (safe
extraction) and ``sources`` (``--source`` or a download turned into folders to search).

Uses nothing else of :mod:`scsa_yolo.data`.
"""
