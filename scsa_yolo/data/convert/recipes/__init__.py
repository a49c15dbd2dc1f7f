"""Dataset recipes: one module per benchmark dataset, found by name.

``get_recipe("visdrone")`` returns the recipe object; importing this package imports no
recipe module (they load on first use), so ``scsa-yolo data list`` stays fast. A recipe may
have variants, datasets of their own named ``NAME-VARIANT`` (``synthetic-lowlight``):
``get_recipe`` asks the recipe of ``NAME`` for them.
"""
from __future__ import annotations

import importlib

from .base import ClassifiedImage, Conversion, ConvertedImage, Recipe, RecipeOption, RecipeOptionError, UnknownDataset

# name -> (module, class); the order is the order of `scsa-yolo data list`
_RECIPES: dict[str, tuple[str, str]] = {
    "coco": ("coco", "CocoRecipe"),
    "voc": ("voc", "VocRecipe"),
    "visdrone": ("visdrone", "VisDroneRecipe"),
    "exdark": ("exdark", "ExDarkRecipe"),
    "flir": ("flir", "FlirRecipe"),
    "imagefolder": ("imagefolder", "ImageFolderRecipe"),
    "synthetic-cls": ("synthetic_cls", "SyntheticClsRecipe"),
    "synthetic": ("synthetic", "SyntheticRecipe"),
}


def recipe_names(task: str | None = None) -> list[str]:
    """The recipes' names (without their variants); with ``task`` (``detect``, ``classify``)
    only those writing that layout (this imports the recipe modules)."""
    return [name for name in _RECIPES if task is None or _recipe_class(name).task == task]


def dataset_names() -> list[str]:
    """Every name ``scsa-yolo data prepare`` accepts: each recipe, then its variants."""
    names = []
    for name in _RECIPES:
        names += [name, *(f"{name}-{variant}" for variant in _recipe_class(name).variants)]
    return names


def get_recipe(name: str) -> Recipe:
    """The recipe of dataset ``name`` (case-insensitive), a variant's too.

    Raises:
        UnknownDataset: no recipe has that name.
        RecipeOptionError: ``NAME-VARIANT`` with a variant its recipe does not have (the
            message lists the choices).
    """
    key = str(name).lower()
    if key in _RECIPES:
        return _recipe_class(key)()
    # the longest recipe name before a dash: synthetic-cls-tiny is a variant of synthetic-cls
    family = max((r for r in _RECIPES if key.startswith(r + "-")), key=len, default=None)
    try:
        if family is not None:
            return _recipe_class(family).variant(key)
    except UnknownDataset:
        pass
    raise UnknownDataset(f"unknown dataset '{name}'; known datasets: {', '.join(dataset_names())}")


def is_generated(name: str) -> bool:
    """Whether ``name`` is a dataset a recipe generates (False for unknown names and paths).

    Raises:
        RecipeOptionError: a generated recipe's name with a variant it does not have.
    """
    try:
        return get_recipe(name).generated
    except UnknownDataset:
        return False


def _recipe_class(name: str) -> type[Recipe]:
    module_name, class_name = _RECIPES[name]
    return getattr(importlib.import_module(f"{__name__}.{module_name}"), class_name)


__all__ = [
    "ClassifiedImage",
    "Conversion",
    "ConvertedImage",
    "Recipe",
    "RecipeOption",
    "RecipeOptionError",
    "UnknownDataset",
    "dataset_names",
    "get_recipe",
    "is_generated",
    "recipe_names",
]
