"""Triton kernels behind :mod:`scsa_yolo.nn.scsa_fast` (imported lazily, only when used).

``forward`` holds the five forward launches, ``backward`` the four backward launches. The
kernels are plain ``triton.jit`` functions; whether Triton compiles them for the GPU or runs
them in its CPU interpreter is decided when this package is imported (see
:func:`scsa_yolo.nn.scsa_fast._kernels`).
"""
