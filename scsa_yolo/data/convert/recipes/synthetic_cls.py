"""``synthetic-cls``: the offline classification set, crops of the synthetic shapes.

Each image is a crop around one class object of the synthetic detection set
(:mod:`~scsa_yolo.data.convert.recipes.synthetic`), drawn at the crop's resolution with the
same parts: the smooth colour field, clutter lines and boxes, and distractor shapes (a class
shape in another class's colour, or a grey one) partly in view behind the object, so the
class is told by shape *and* colour, as in the detection set. The object fills 45..75 % of
the crop side at a random place and aspect ratio. One class per shape, named as the
detection classes (``red_circle`` ...); Ultralytics numbers them by sorted name
(``blue_triangle`` is class 0), the order of the manifest's ``classes``.

The same domain shifts as the detection set, each its own dataset with the same classes:
``synthetic-cls-lowlight`` (dark, flat, noisy), ``synthetic-cls-tiny`` (the crop drawn at a
quarter of its size, at least 16 px, and scaled up: a crop of a tiny, blurry object, as from
VisDrone) and ``synthetic-cls-thermal`` (grey, the class's temperature, long-tailed class
frequencies 0.55**k after one crop of each class per split).

Each of those four has a *shape-only* twin named with ``-shape`` (``synthetic-cls-shape``,
``synthetic-cls-tiny-shape`` ...): the object is drawn in the colour (thermal: temperature)
of a class picked at random, so its shape alone tells the class. Crop *k* of a twin is crop
*k* of its coloured set with only the object's colour changed (the pick has a stream of its
own): the same crop where the pick is the object's own class. The coloured sets are nearly
solved by colour alone (YOLOv8n-cls reaches 99.5 % top-1 on ``synthetic-cls`` in 12 epochs),
so the twins are the classification benchmark's sets that leave room between methods.

Classes cycle with the image index (image *k* is class ``k % 6``; thermal: after the first
six), so every class is in every split from six images on. Every image is drawn from its
own seeded stream: deterministic, and image *k* is the same whatever the split size.
"""
from __future__ import annotations

import io
from typing import Any, Iterator

import numpy as np

from scsa_yolo.data.fetch.sources import SourceTree
from ..events import ConversionLog
from . import synthetic
from .base import ClassifiedImage, Conversion, Recipe, RecipeOption
from .synthetic import CLASS_NAMES, CLASSES, SCENARIOS, Scenario, Shape, SyntheticOptionError

NAME = "synthetic-cls"
GENERATOR_VERSION = 1
_STREAM = 100  # added to a scenario's stream: crops never share a random stream with scene images
_COLOUR_STREAM = 7  # appended to a crop's key for the shape-only colour pick: the crop's own stream is untouched
SHAPE_SUFFIX = "shape"

DEFAULTS: dict[str, Any] = {
    "num_train": 1200,
    "num_val": 300,
    "imgsz": 64,
    "distractors": 1.0,  # mean distractor shapes per crop (Poisson)
    "jpeg_quality": 90,
}
#: Ultralytics' class order: the sorted class folder names
SORTED_CLASSES = tuple(sorted(CLASS_NAMES))
#: the variants (``NAME-VARIANT``): the scenarios, then the shape-only twin of each set
VARIANTS: tuple[str, ...] = (*SCENARIOS, SHAPE_SUFFIX, *(f"{s}-{SHAPE_SUFFIX}" for s in SCENARIOS))
DATASET_NAMES: tuple[str, ...] = (NAME, *(f"{NAME}-{v}" for v in VARIANTS))


def parse_dataset(name: str) -> tuple[Scenario | None, bool]:
    """The scenario (None for none) and whether the set is shape-only, of a dataset name:
    ``synthetic-cls``, ``synthetic-cls-SCENARIO``, and either with ``-shape`` appended.

    Raises:
        SyntheticOptionError: any other name; the message lists the valid ones.
    """
    text = str(name).lower()
    variant = text[len(NAME) + 1:] if text.startswith(NAME + "-") else None
    if text == NAME or variant in VARIANTS:
        parts = variant.split("-") if variant else []
        shape_only = parts[-1:] == [SHAPE_SUFFIX]
        scenario = parts[0] if parts[:1] and parts[0] != SHAPE_SUFFIX else None
        return (SCENARIOS[scenario] if scenario else None), shape_only
    raise SyntheticOptionError(f"unknown synthetic classification dataset {name!r}; choices: {', '.join(DATASET_NAMES)}")


def crop_key(seed: int, split: str, index: int, scenario: Scenario | None) -> list[int]:
    """The seed key of crop ``index`` of ``split``: its random stream, whatever the split size."""
    return [int(seed), {"train": 0, "val": 1}[split], int(index), GENERATOR_VERSION,
            _STREAM + (scenario.stream if scenario is not None else 0)]


def object_colour_class(key: list[int], class_index: int, shape_only: bool) -> int:
    """The class whose colour (temperature) the object of a crop gets: its own, or for a
    shape-only set one drawn uniformly from its own stream (``key``: the crop's seed key)."""
    if not shape_only:
        return class_index
    return int(np.random.default_rng([*key, _COLOUR_STREAM]).integers(len(CLASSES)))


def _check_options(options: dict[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise SyntheticOptionError(
            f"unknown {NAME} option(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}"
        )
    params = {**DEFAULTS, **options}
    for key in ("num_train", "num_val", "imgsz", "jpeg_quality"):
        value = params[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise SyntheticOptionError(f"{NAME} option {key}={value!r} must be a positive integer")
    if params["imgsz"] < 16:
        raise SyntheticOptionError(f"{NAME} option imgsz={params['imgsz']} must be at least 16 pixels")
    if params["jpeg_quality"] > 100:
        raise SyntheticOptionError(f"{NAME} option jpeg_quality={params['jpeg_quality']} must be 1..100")
    value = params["distractors"]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
        raise SyntheticOptionError(f"{NAME} option distractors={value!r} must be a number >= 0")
    return params


def _box(rng: np.random.Generator, size: int, low: float, high: float) -> tuple[int, int, int, int]:
    """A box ``(x0, y0, x1, y1)`` with a side of ``low..high`` of ``size``, inside the crop."""
    side = rng.uniform(low, high) * size
    aspect = rng.uniform(0.75, 1.33)
    w = int(np.clip(round(side * np.sqrt(aspect)), 4, size - 1))
    h = int(np.clip(round(side / np.sqrt(aspect)), 4, size - 1))
    x0, y0 = int(rng.integers(0, size - w + 1)), int(rng.integers(0, size - h + 1))
    return x0, y0, x0 + w, y0 + h


def _distractor(rng: np.random.Generator, size: int, target: tuple[int, int, int, int],
                scenario: Scenario | None) -> Shape | None:
    """A class shape in another class's colour (or a grey one) partly hidden by the target at most."""
    for _ in range(10):
        box = _box(rng, size, 0.2, 0.4)
        if synthetic._overlap(box, target) < 0.5:
            break
    else:
        return None
    shape_of = int(rng.integers(len(CLASSES)))
    if rng.random() < 0.75:
        colour = synthetic._class_colour((shape_of + int(rng.integers(1, len(CLASSES)))) % len(CLASSES), scenario)
    else:
        grey = int(rng.integers(95, 121)) if scenario is not None and scenario.name == "thermal" else int(rng.integers(90, 200))
        colour = (grey, grey, grey)
    return Shape(CLASSES[shape_of][1], colour, *box, class_index=None)


def render_crop(seed: int, split: str, index: int, params: dict[str, Any],
                scenario: Scenario | None = None, shape_only: bool = False) -> tuple[bytes, str]:
    """JPEG bytes and the class name of crop ``index`` of ``split`` (see the module docstring);
    ``shape_only``: the object in a random class's colour."""
    from PIL import Image, ImageDraw, ImageFilter

    name = scenario.name if scenario is not None else None
    key = crop_key(seed, split, index, scenario)
    rng = np.random.default_rng(key)
    if name == "thermal" and index >= len(CLASSES):
        weights = np.asarray(synthetic.THERMAL_CLASS_WEIGHTS) / sum(synthetic.THERMAL_CLASS_WEIGHTS)
        class_index = int(rng.choice(len(CLASSES), p=weights))
    else:
        class_index = index % len(CLASSES)
    out = params["imgsz"]
    size = max(16, out // 4) if name == "tiny" else out
    thermal = name == "thermal"
    image = Image.fromarray(synthetic._thermal_background(rng, size) if thermal else synthetic._background(rng, size))
    draw = ImageDraw.Draw(image)
    synthetic._draw_clutter(draw, rng, size, grey=thermal)
    target_box = _box(rng, size, 0.45, 0.75)
    colour_of = object_colour_class(key, class_index, shape_only)
    target = Shape(CLASSES[class_index][1], synthetic._class_colour(colour_of, scenario), *target_box,
                   class_index=class_index)
    for _ in range(int(rng.poisson(params["distractors"]))):
        distractor = _distractor(rng, size, target_box, scenario)
        if distractor is not None:
            synthetic._draw_shape(draw, distractor, rng, grey=thermal)
    synthetic._draw_shape(draw, target, rng, grey=thermal)  # last: the object is whole
    if name == "lowlight":
        image = Image.fromarray(synthetic._low_light(np.asarray(image), rng))
    elif thermal:
        image = image.convert("L").filter(ImageFilter.GaussianBlur(0.7))
    if size != out:
        image = image.resize((out, out), Image.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=params["jpeg_quality"])
    return buffer.getvalue(), CLASSES[class_index][0]


class SyntheticClsRecipe(Recipe):
    """``synthetic-cls`` and ``synthetic-cls-SCENARIO``: drawn crops in class folders."""

    name = NAME
    title = "Synthetic classification crops (generated offline)"
    classes = SORTED_CLASSES
    splits = ("train", "val")
    eval_splits = ("val",)
    generated = True
    task = "classify"
    variants = VARIANTS
    options = (RecipeOption("seed", 0, "synthetic: random seed of the generator."),)
    manual_help = "The synthetic classification dataset is generated locally; it needs no source files."

    def __init__(self, scenario: Scenario | None = None, shape_only: bool = False) -> None:
        self.scenario = scenario
        self.shape_only = shape_only
        parts = [scenario.name] if scenario is not None else []
        if shape_only:
            parts.append(SHAPE_SUFFIX)
        if parts:
            self.name = "-".join([NAME, *parts])
            scene = f", {scenario.name} ({scenario.like}-like)" if scenario is not None else ""
            shape = ", shape only (objects in a random class's colour)" if shape_only else ""
            self.title = f"Synthetic classification crops{scene}{shape}"

    @classmethod
    def variant(cls, name: str) -> "SyntheticClsRecipe":
        """The recipe of ``synthetic-cls-VARIANT`` (``-SCENARIO``, ``-shape``, ``-SCENARIO-shape``).

        Raises:
            SyntheticOptionError: an unknown variant; the message lists the dataset names.
        """
        return cls(*parse_dataset(name))

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """``seed`` and the options of :data:`DEFAULTS`, checked.

        Raises:
            SyntheticOptionError: an unknown option or a bad value.
        """
        given = dict(given or {})
        seed = given.pop("seed", 0)
        try:
            seed = int(seed)
        except (TypeError, ValueError):
            raise SyntheticOptionError(f"{NAME} option seed={seed!r} must be an integer") from None
        extra = {"scenario": self.scenario.name} if self.scenario is not None else {}
        if self.shape_only:  # absent for the coloured sets: their requests (and prepared folders) stay valid
            extra["colour"] = "random"
        return {"generator_version": GENERATOR_VERSION, "seed": seed, **extra,
                **dict(sorted(_check_options(given).items()))}

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        params = {key: options[key] for key in DEFAULTS}
        scenario = self.scenario
        notes = [
            "generated by scsa_yolo.data.convert.recipes.synthetic_cls (no source files): one crop per image, "
            "class folders named as the synthetic detection classes",
            *([f"scenario {scenario.name}: {scenario.title}; same classes as '{NAME}'"] if scenario else []),
            *(["shape only: each object is drawn in the colour of a class picked at random, so its shape alone "
               "tells the class; otherwise the crops of the coloured set"] if self.shape_only else []),
        ]
        return Conversion(
            list(SORTED_CLASSES),
            self._images(options["seed"], params),
            totals={"train": params["num_train"], "val": params["num_val"]},
            notes=notes,
            manifest_extra={"generator": dict(options), **({"scenario": scenario.name} if scenario else {})},
        )

    def _images(self, seed: int, params: dict[str, Any]) -> Iterator[tuple[str, ClassifiedImage]]:
        for split, count in (("train", params["num_train"]), ("val", params["num_val"])):
            for index in range(count):
                data, class_name = render_crop(seed, split, index, params, self.scenario, self.shape_only)
                yield split, ClassifiedImage(None, f"{split}_{index:05d}.jpg", class_name, data=data)
