"""Model YAMLs with attention rows: the generator behind ``scsa-yolo models make``.

* :mod:`.generate` -- insert rows and remap every ``from`` index (pure dict work).
* :mod:`.render` -- write the readable YAML text.
* :mod:`.catalog` -- bases, file names and the committed ``cfg/models`` set.
* :mod:`.table` -- parameter/GFLOPs table of the committed set.
"""
