"""Dataset recipes: one module per benchmark dataset, found by name.

``get_recipe("visdrone")`` returns the recipe object; importing this package imports no
recipe module (they load on first use), so ``scsa-yolo data list`` stays fast.
"""
from __future__ import annotations

import importlib

from .base import Conversion, ConvertedImage, Recipe, RecipeOption, RecipeOptionError

# name -> (module, class); the order is the order of `scsa-yolo data list`
_RECIPES: dict[str, tuple[str, str]] = {
    "coco": ("coco", "CocoRecipe"),
    "voc": ("voc", "VocRecipe"),
    "visdrone": ("visdrone", "VisDroneRecipe"),
    "exdark": ("exdark", "ExDarkRecipe"),
    "flir": ("flir", "FlirRecipe"),
    "synthetic": ("synthetic", "SyntheticRecipe"),
}


class UnknownDataset(ValueError):
    """A dataset name no recipe has."""


def recipe_names() -> list[str]:
    """Names accepted by ``scsa-yolo data prepare``."""
    return list(_RECIPES)


def get_recipe(name: str) -> Recipe:
    """The recipe of dataset ``name`` (case-insensitive)."""
    key = str(name).lower()
    if key not in _RECIPES:
        raise UnknownDataset(f"unknown dataset '{name}'; known datasets: {', '.join(_RECIPES)}")
    module_name, class_name = _RECIPES[key]
    module = importlib.import_module(f"{__name__}.{module_name}")
    return getattr(module, class_name)()


__all__ = [
    "Conversion",
    "ConvertedImage",
    "Recipe",
    "RecipeOption",
    "RecipeOptionError",
    "UnknownDataset",
    "get_recipe",
    "recipe_names",
]
