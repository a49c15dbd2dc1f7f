"""The built-in synthetic dataset: generated, not converted.

Its generator is :func:`scsa_yolo.data.synthetic.prepare_synthetic` (part of the
Ultralytics integration); this recipe only lets ``scsa-yolo data list`` and ``prepare``
treat it like the other datasets. Its classes and splits are whatever the generator
writes; ``data list`` reads them from the prepared manifest.
"""
from __future__ import annotations

from .base import Recipe, RecipeOption


class SyntheticRecipe(Recipe):
    name = "synthetic"
    title = "Synthetic (generated offline)"
    classes = None
    splits = ("train", "val")
    eval_splits = ("val",)
    options = (
        RecipeOption("seed", 0, "synthetic: random seed of the generator."),
    )
    manual_help = "The synthetic dataset is generated locally; it needs no source files."
