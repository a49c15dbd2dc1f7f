"""The built-in synthetic detection and segmentation dataset: the offline default for training and tests.

Every image is drawn from a seed (``numpy.random.Generator`` per image, so image *k* of a
split is the same whatever the split size), in the prepared layout of
:mod:`scsa_yolo.data.layout.paths` under ``ROOT/synthetic/``, written by the
same writer, manifest and folder swap as every other recipe.

What an image holds (a task where *where* and *which channels* both matter, i.e. where
spatial and channel attention have something to do):

* **Classes**: six shape/colour conjunctions (``red_circle``, ``green_square``,
  ``blue_triangle``, ``yellow_diamond``, ``magenta_cross``, ``cyan_ring``), colours jittered.
* **Sizes** in COCO's bands (areas < 32^2, 32^2..96^2, > 96^2 pixels at the stored image
  size, 160 px by default), so APs, APm and APl are all measured: mostly small and medium
  objects, about one large box every three images. COCO bands an object by its ``area``,
  which is its mask's (a circle covers pi/4 of its box, a triangle half): by that area about
  one object in twenty is large (measured on 320 images: 44 of 836 objects; 108 by box area).
* **Distractors** that are not a class: a class shape in another class's colour (a blue
  circle), and grey shapes -- a detector must use shape *and* colour.
* **Clutter**: a smooth random colour field, random lines and outlined boxes, pixel noise.

Scenarios (domain shifts after the SCSA paper's Table 4 datasets), each its own dataset
``synthetic-SCENARIO`` in ``ROOT/synthetic-SCENARIO/`` with the *same six classes* in the
same order, so a checkpoint trained on ``synthetic`` fine-tunes with the same head:

* ``lowlight`` (like ExDark): the default scene, then reduced contrast (x0.45..0.7 about the
  image mean), a gamma of 1.4..2.2, an exposure of x0.12..0.35 and sensor-like noise
  (signal-dependent shot noise plus per-channel read noise). Measured on 320 images: mean
  grey level ~18 instead of ~127, RMS contrast (grey standard deviation) ~4.6 instead of
  ~18, and pixel noise is then a large part of what contrast is left.
* ``tiny`` (like VisDrone): ``max_objects//2 .. max_objects`` objects per image (12..24 by
  default) with sides of 3..8 % of the image (5..13 px at 160 px: all in COCO's *small*
  band), no large objects, and about 4 tiny distractors per image. Measured: 18 boxes per
  image with a median side of 9 px (default set: 2.6 boxes, 39 px).
* ``thermal`` (like FLIR-ADAS v2): single-channel images (stored as greyscale JPEGs; every
  reader that asks for colour, Ultralytics included, gets three equal channels). Classes
  are told apart by shape and "temperature" (a grey level per class, 130..230, on a cool
  30..110 background with column fixed-pattern noise and a soft optical blur); distractors
  are class shapes at another class's temperature, or lukewarm shapes. Class frequencies are
  long-tailed: class *k* is drawn with weight 0.55**k (``red_circle`` ~46 % of the boxes,
  ``cyan_ring`` ~2.3 %, a head/tail ratio of about 20; 402 vs 20 boxes in 320 images).
  The classes keep their names (a ``red_circle`` is the hottest circle), so the head of a
  ``synthetic`` checkpoint fits unchanged.

Every scenario draws from its own random streams, so its images are new scenes, not
shifted copies of the default set's images; the default set is unchanged by them.

Every class object comes with its exact polygon (:func:`shape_polygon`), so the labels are
Ultralytics segment labels (``class x1 y1 x2 y2 ...``): one prepared set trains detection
(Ultralytics derives each box from its polygon, and the polygon's extent is the box) and
segmentation, and the COCO ground truth carries ``segmentation`` and the polygon's ``area``.
Adding the polygons changed no image and no box: they draw no random numbers.

``labels: boxes`` (``--set labels=boxes``) writes box rows instead, the same images and boxes
without the polygons (the COCO ground truth then has no ``segmentation``, and each object's
``area`` is its box's). It is the cheaper set for detection-only grids: Ultralytics resamples
and transforms every polygon of a mosaic at each augmentation, which made the default
dense ``synthetic-tiny`` set's training loader about 8x slower per image on one CPU core
(``results/evidence/loader_cost_cpu.md``), and with no rotation or shear (Ultralytics'
defaults) the polygons change the augmented boxes only where an object is cut by the frame.
A segmentation grid refuses such a set before training (no masks).

The recipe hands each image's JPEG bytes and boxes to the writer, like any converter.
``scsa-yolo data prepare synthetic`` (or :func:`scsa_yolo.data.prepare.prepare_dataset`)
skips the work when ``manifest.json`` records the same options and the files on disk still
hash to the recorded content hash; otherwise it generates the set again.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any, Iterator

import numpy as np

from scsa_yolo.data.fetch.sources import SourceTree
from ..boxes import GtBox
from ..events import ConversionLog
from ..masks import Mask
from .base import Conversion, ConvertedImage, Recipe, RecipeOption, RecipeOptionError

NAME = "synthetic"
GENERATOR_VERSION = 1  # part of every image's random stream: a new version means new images
#: what the label files hold by default; in the request, so a set prepared with box labels
#: (before polygons, or with ``labels: boxes``) is generated again rather than reused
LABELS = "polygons"
LABEL_KINDS = ("polygons", "boxes")

CLASSES: tuple[tuple[str, str, tuple[int, int, int]], ...] = (
    ("red_circle", "circle", (220, 40, 40)),
    ("green_square", "square", (40, 190, 60)),
    ("blue_triangle", "triangle", (50, 80, 230)),
    ("yellow_diamond", "diamond", (235, 210, 40)),
    ("magenta_cross", "cross", (210, 50, 200)),
    ("cyan_ring", "ring", (40, 200, 210)),
)
CLASS_NAMES = tuple(name for name, _, _ in CLASSES)

#: side-length ranges (fraction of the image side) per COCO size band at 160 px:
#: small < 32 px, medium 32..96 px, large > 96 px (areas use the box, so sides are chosen
#: with margin inside each band).
_SIZE_BANDS = {"small": (0.07, 0.17), "medium": (0.24, 0.52), "large": (0.66, 0.85), "tiny": (0.03, 0.08)}

DEFAULTS: dict[str, Any] = {
    "num_train": 320,
    "num_val": 80,
    "imgsz": 160,
    "max_objects": 5,
    "distractors": 1.5,  # mean distractors per image (Poisson)
    "large_fraction": 0.33,  # probability that an image gets one large object
    "jpeg_quality": 90,
    "labels": LABELS,  # or "boxes": no polygons (faster detection training, no segmentation)
}


class SyntheticOptionError(RecipeOptionError):
    """An unknown or invalid generation option (the message names it)."""


@dataclass(frozen=True)
class Scenario:
    """A domain shift of the synthetic set (see the module docstring for what each draws).

    ``stream`` is appended to every image's random seed; it is fixed per scenario (never
    derived from the order of :data:`SCENARIOS`) so adding a scenario changes no other.
    ``defaults`` replace entries of :data:`DEFAULTS`; explicit options still win.
    """

    name: str
    like: str  # the paper's dataset it imitates
    title: str
    stream: int
    defaults: dict = field(default_factory=dict, hash=False)

    @property
    def dataset(self) -> str:
        return f"{NAME}-{self.name}"


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("lowlight", "ExDark", "Synthetic low light (ExDark-like)", 1),
        Scenario(
            "tiny", "VisDrone", "Synthetic tiny dense (VisDrone-like)", 2,
            {"max_objects": 24, "large_fraction": 0.0, "distractors": 4.0},
        ),
        Scenario("thermal", "FLIR-ADAS v2", "Synthetic thermal (FLIR-like)", 3),
    )
}
#: every dataset name the generator answers to, default first
DATASET_NAMES: tuple[str, ...] = (NAME, *(s.dataset for s in SCENARIOS.values()))

# lowlight: per-image ranges (drawn uniformly) of the degradation, in [0, 1] intensity units
_LOWLIGHT = {"contrast": (0.45, 0.7), "gamma": (1.4, 2.2), "exposure": (0.12, 0.35),
             "shot": (0.002, 0.006), "read": (0.008, 0.02)}
# thermal: grey level ("temperature") per class, in CLASSES order, and the class weights
_THERMAL_LEVELS = (230, 170, 130, 210, 150, 190)
THERMAL_CLASS_WEIGHTS = tuple(0.55**k for k in range(len(CLASSES)))


def get_scenario(scenario: str | Scenario | None) -> Scenario | None:
    """The :class:`Scenario` called ``scenario`` (None: the default set).

    Raises:
        SyntheticOptionError: unknown name; the message lists the choices.
    """
    if scenario is None or isinstance(scenario, Scenario):
        return scenario
    key = str(scenario).lower()
    if key not in SCENARIOS:
        raise SyntheticOptionError(
            f"unknown synthetic scenario {scenario!r}; choices: {', '.join(SCENARIOS)} "
            f"(datasets {', '.join(DATASET_NAMES)})"
        )
    return SCENARIOS[key]


def scenario_of_dataset(name: str) -> Scenario | None:
    """The scenario a generated dataset's name asks for (None for ``synthetic``).

    Raises:
        SyntheticOptionError: not ``synthetic`` nor ``synthetic-SCENARIO`` with a known
            scenario; the message lists the valid dataset names.
    """
    text = str(name).lower()
    if text == NAME:
        return None
    if text.startswith(NAME + "-") and text[len(NAME) + 1 :] in SCENARIOS:
        return SCENARIOS[text[len(NAME) + 1 :]]
    raise SyntheticOptionError(
        f"unknown synthetic dataset {name!r}; choices: {', '.join(DATASET_NAMES)} "
        f"(scenarios: {', '.join(SCENARIOS)})"
    )


@dataclass(frozen=True)
class Shape:
    kind: str
    colour: tuple[int, int, int]
    x0: int
    y0: int
    x1: int  # exclusive
    y1: int  # exclusive
    class_index: int | None  # None: a distractor


def _check_options(options: dict[str, Any], scenario: Scenario | None = None) -> dict[str, Any]:
    """:data:`DEFAULTS`, then the scenario's own defaults, then ``options``; every value checked."""
    unknown = sorted(set(options) - set(DEFAULTS))
    if unknown:
        raise SyntheticOptionError(
            f"unknown synthetic dataset option(s) {', '.join(unknown)}; known: {', '.join(sorted(DEFAULTS))}"
        )
    scenario_defaults = scenario.defaults if scenario is not None else {}
    params = {**DEFAULTS, **scenario_defaults, **options}
    for key in ("num_train", "num_val", "imgsz", "max_objects", "jpeg_quality"):
        value = params[key]
        if not isinstance(value, int) or isinstance(value, bool) or value < (0 if key == "num_train" else 1):
            raise SyntheticOptionError(f"synthetic option {key}={value!r} must be a positive integer")
    if params["num_train"] < 1:
        raise SyntheticOptionError("synthetic option num_train must be at least 1")
    if params["imgsz"] < 32:
        raise SyntheticOptionError(f"synthetic option imgsz={params['imgsz']} must be at least 32 pixels")
    if not 1 <= params["jpeg_quality"] <= 100:
        raise SyntheticOptionError(f"synthetic option jpeg_quality={params['jpeg_quality']} must be 1..100")
    if params["labels"] not in LABEL_KINDS:
        raise SyntheticOptionError(
            f"synthetic option labels={params['labels']!r} must be one of {', '.join(LABEL_KINDS)}"
        )
    for key in ("distractors", "large_fraction"):
        value = params[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise SyntheticOptionError(f"synthetic option {key}={value!r} must be a number >= 0")
    if params["large_fraction"] > 1:
        raise SyntheticOptionError(f"synthetic option large_fraction={params['large_fraction']} must be <= 1")
    return params


# ------------------------------------------------------------------------------ drawing
def _background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8: a smooth random colour field plus noise."""
    from PIL import Image

    coarse = rng.integers(60, 196, size=(4, 4, 3), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float32)
    field = 0.55 * field + 0.45 * 128  # muted: object colours stay the saturated ones
    field += rng.normal(0.0, 6.0, size=field.shape)
    return np.clip(field, 0, 255).astype(np.uint8)


def _thermal_background(rng: np.random.Generator, size: int) -> np.ndarray:
    """(size, size, 3) uint8 with equal channels: a cool smooth field (30..110), column
    fixed-pattern noise (as a microbolometer's) and pixel noise."""
    from PIL import Image

    coarse = rng.integers(30, 111, size=(4, 4), dtype=np.uint8)
    field = np.asarray(Image.fromarray(coarse).resize((size, size), Image.BICUBIC), dtype=np.float32)
    field += rng.normal(0.0, 3.0, size=(1, size))  # one offset per column
    field += rng.normal(0.0, 4.0, size=field.shape)
    grey = np.clip(field, 0, 255).astype(np.uint8)
    return np.repeat(grey[:, :, None], 3, axis=2)


def _draw_clutter(draw, rng: np.random.Generator, size: int, grey: bool = False) -> None:
    for _ in range(int(rng.integers(3, 9))):
        if grey:  # lukewarm structures (walls, poles): below every class temperature
            level = int(rng.integers(60, 121))
            tone = (level, level, level)
        else:
            tone = tuple(int(v) for v in rng.integers(70, 170, size=3))
        points = [tuple(int(v) for v in rng.integers(0, size, size=2)) for _ in range(2)]
        if rng.random() < 0.6:
            draw.line(points, fill=tone, width=int(rng.integers(1, 3)))
        else:
            (x0, y0), (x1, y1) = points
            draw.rectangle([min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1)], outline=tone, width=1)


def _jitter(rng: np.random.Generator, colour: tuple[int, int, int]) -> tuple[int, int, int]:
    return tuple(int(np.clip(c + rng.integers(-25, 26), 0, 255)) for c in colour)


def _grey_jitter(rng: np.random.Generator, colour: tuple[int, int, int]) -> tuple[int, int, int]:
    """One jitter for all channels (+-6: class temperatures are 20 grey levels apart)."""
    level = int(np.clip(colour[0] + rng.integers(-6, 7), 0, 255))
    return (level, level, level)


def _cross_bars(shape: Shape) -> tuple[list[float], list[float]]:
    """The cross's vertical and horizontal bar as PIL rectangles (pixel indices, inclusive;
    PIL truncates the fractional ends)."""
    x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1 - 1, shape.y1 - 1
    w, h = x1 - x0, y1 - y0
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    bar_w, bar_h = max(1, round(w / 3)), max(1, round(h / 3))
    return [cx - bar_w / 2, y0, cx + bar_w / 2, y1], [x0, cy - bar_h / 2, x1, cy + bar_h / 2]


def _ring_width(shape: Shape) -> int:
    return max(2, round(min(shape.x1 - 1 - shape.x0, shape.y1 - 1 - shape.y0) / 6))


def _draw_shape(draw, shape: Shape, rng: np.random.Generator, grey: bool = False) -> None:
    x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1 - 1, shape.y1 - 1
    fill = _grey_jitter(rng, shape.colour) if grey else _jitter(rng, shape.colour)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape.kind == "circle":
        draw.ellipse([x0, y0, x1, y1], fill=fill)
    elif shape.kind == "square":
        draw.rectangle([x0, y0, x1, y1], fill=fill)
    elif shape.kind == "triangle":
        draw.polygon([(cx, y0), (x1, y1), (x0, y1)], fill=fill)
    elif shape.kind == "diamond":
        draw.polygon([(cx, y0), (x1, cy), (cx, y1), (x0, cy)], fill=fill)
    elif shape.kind == "cross":
        for bar in _cross_bars(shape):
            draw.rectangle(bar, fill=fill)
    elif shape.kind == "ring":
        draw.ellipse([x0, y0, x1, y1], outline=fill, width=_ring_width(shape))
    else:  # pragma: no cover - kinds come from CLASSES
        raise ValueError(shape.kind)


_ELLIPSE_VERTICES = 32  # a multiple of 4: the four extreme points are vertices, so the box is exact


def _ellipse(cx: float, cy: float, rx: float, ry: float, reverse: bool = False) -> list[tuple[float, float]]:
    steps = range(_ELLIPSE_VERTICES, 0, -1) if reverse else range(_ELLIPSE_VERTICES)
    angles = (2 * math.pi * k / _ELLIPSE_VERTICES for k in steps)
    return [(cx + rx * math.cos(a), cy + ry * math.sin(a)) for a in angles]


def shape_polygon(shape: Shape) -> tuple[float, ...]:
    """The outline of ``shape`` as one flat polygon (pixels, ``[x0, x1)`` covers the box).

    It is the drawn shape's geometry in the box ``x0 y0 x1 y1``: the square and the cross
    match the drawn pixels exactly, the other shapes to within PIL's rasterisation (mask IoU
    with the drawn pixels, lowest over shapes and aspect ratios: 0.80 for sides of 8..19 px,
    0.92 for 20..39 px, 0.96 from 40 px; on average 0.95, 0.98, 0.99); its extent is the box
    itself, so a box derived from the polygon (as Ultralytics does) is the class box. The
    ring is its outer ellipse and, walked the other way round and joined by a zero-width
    bridge, its hole. Where a smaller shape is drawn over a larger one (boxes overlap by
    less than 15 % of the smaller), the larger one's polygon still covers the hidden part.
    """
    x0, y0, x1, y1 = shape.x0, shape.y0, shape.x1, shape.y1
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    if shape.kind == "square":
        points = [(x0, y0), (x1, y0), (x1, y1), (x0, y1)]
    elif shape.kind == "triangle":
        points = [(cx, y0), (x1, y1), (x0, y1)]
    elif shape.kind == "diamond":
        points = [(cx, y0), (x1, cy), (cx, y1), (x0, cy)]
    elif shape.kind == "circle":
        points = _ellipse(cx, cy, (x1 - x0) / 2, (y1 - y0) / 2)
    elif shape.kind == "cross":
        (left, _, right, _), (_, top, _, bottom) = _cross_bars(shape)
        a, b = int(left), int(right) + 1  # the columns and rows PIL fills
        c, d = int(top), int(bottom) + 1
        points = [(a, y0), (b, y0), (b, c), (x1, c), (x1, d), (b, d), (b, y1), (a, y1), (a, d), (x0, d), (x0, c), (a, c)]
    elif shape.kind == "ring":
        outer = _ellipse(cx, cy, (x1 - x0) / 2, (y1 - y0) / 2)
        rx, ry = (x1 - x0) / 2 - _ring_width(shape), (y1 - y0) / 2 - _ring_width(shape)
        points = outer
        if min(rx, ry) > 0.5:  # a hole wider than a pixel: a ring this small is drawn filled
            # the hole walked the other way round, entered and left along a zero-width bridge at angle 0
            inner = _ellipse(cx, cy, rx, ry, reverse=True)  # starts at angle 0 (2 pi)
            points = [*outer, outer[0], *inner, inner[0]]
    else:  # pragma: no cover - kinds come from CLASSES
        raise ValueError(shape.kind)
    return tuple(float(v) for p in points for v in p)


def _place(rng: np.random.Generator, size: int, band: str, taken: list[tuple[int, int, int, int]]):
    """A free box (x0, y0, x1, y1) in ``band``, or None after a few tries."""
    low, high = _SIZE_BANDS[band]
    for _ in range(20):
        side = rng.uniform(low, high) * size
        aspect = rng.uniform(0.75, 1.33)
        w = int(np.clip(round(side * np.sqrt(aspect)), 4, size - 2))
        h = int(np.clip(round(side / np.sqrt(aspect)), 4, size - 2))
        x0 = int(rng.integers(0, size - w + 1))
        y0 = int(rng.integers(0, size - h + 1))
        box = (x0, y0, x0 + w, y0 + h)
        if all(_overlap(box, other) < 0.15 for other in taken):
            return box
    return None


def _overlap(a, b) -> float:
    """Intersection over the smaller box's area."""
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    smaller = min((a[2] - a[0]) * (a[3] - a[1]), (b[2] - b[0]) * (b[3] - b[1]))
    return iw * ih / smaller


def _class_colour(index: int, scenario: Scenario | None) -> tuple[int, int, int]:
    if scenario is not None and scenario.name == "thermal":
        return (_THERMAL_LEVELS[index],) * 3
    return CLASSES[index][2]


def _plan_image(rng: np.random.Generator, params: dict[str, Any], scenario: Scenario | None = None) -> list[Shape]:
    """Objects and distractors of one image, largest first (so small ones stay visible).

    The default set's draws (and so its images) do not depend on the scenario code paths:
    those only run for a scenario.
    """
    size = params["imgsz"]
    name = scenario.name if scenario is not None else None
    bands = ["large"] if rng.random() < params["large_fraction"] else []
    if name == "tiny":  # dense: at least half of max_objects, all tiny
        count = int(rng.integers(max(1, params["max_objects"] // 2), params["max_objects"] + 1))
        bands += ["tiny"] * (count - len(bands))
    else:
        bands += ["small" if rng.random() < 0.5 else "medium" for _ in range(int(rng.integers(1, params["max_objects"] + 1)) - len(bands))]
    bands = bands or (["tiny"] if name == "tiny" else ["medium"])
    if name == "thermal":
        weights = np.asarray(THERMAL_CLASS_WEIGHTS) / sum(THERMAL_CLASS_WEIGHTS)
    shapes: list[Shape] = []
    taken: list[tuple[int, int, int, int]] = []
    for band in bands:
        box = _place(rng, size, band, taken)
        if box is None:
            continue
        taken.append(box)
        index = int(rng.choice(len(CLASSES), p=weights)) if name == "thermal" else int(rng.integers(len(CLASSES)))
        shapes.append(Shape(CLASSES[index][1], _class_colour(index, scenario), *box, class_index=index))
    for _ in range(int(rng.poisson(params["distractors"]))):
        band = "tiny" if name == "tiny" else "small" if rng.random() < 0.5 else "medium"
        box = _place(rng, size, band, taken)
        if box is None:
            continue
        taken.append(box)
        shape_of = int(rng.integers(len(CLASSES)))
        if rng.random() < 0.75:  # a class shape in another class's colour (temperature)
            colour_of = (shape_of + int(rng.integers(1, len(CLASSES)))) % len(CLASSES)
            colour = _class_colour(colour_of, scenario)
        elif name == "thermal":  # a lukewarm shape: warmer than the background, cooler than any class
            grey = int(rng.integers(95, 121))
            colour = (grey, grey, grey)
        else:  # a grey shape
            grey = int(rng.integers(90, 200))
            colour = (grey, grey, grey)
        shapes.append(Shape(CLASSES[shape_of][1], colour, *box, class_index=None))
    shapes.sort(key=lambda s: -(s.x1 - s.x0) * (s.y1 - s.y0))
    return shapes


def _low_light(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(H, W, 3) uint8 -> a dark, flat, noisy version (ranges in ``_LOWLIGHT``).

    Order as in a camera: the scene's contrast is flattened (haze, weak light), the
    exposure and a gamma darken it, then shot noise (variance proportional to the signal)
    and read noise (independent per channel: chroma noise) are added before quantising.
    """
    draw = {key: rng.uniform(*bounds) for key, bounds in _LOWLIGHT.items()}
    x = image.astype(np.float32) / 255.0
    x = x.mean() + draw["contrast"] * (x - x.mean())
    x = np.clip(x, 0.0, 1.0) ** draw["gamma"] * draw["exposure"]
    x = x + np.sqrt(x * draw["shot"]) * rng.standard_normal(x.shape) + rng.normal(0.0, draw["read"], x.shape)
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def _stream(seed: int, split: str, index: int, scenario: Scenario | None) -> np.random.Generator:
    split_id = {"train": 0, "val": 1}[split]
    key = [int(seed), split_id, int(index), GENERATOR_VERSION]
    return np.random.default_rng(key if scenario is None else [*key, scenario.stream])


def render_image(
    seed: int, split: str, index: int, params: dict[str, Any], scenario: str | Scenario | None = None
) -> tuple[bytes, list[GtBox]]:
    """JPEG bytes and the class boxes (pixels, each with its polygon unless ``params['labels']``
    is ``"boxes"``) of image ``index`` of ``split``.

    ``scenario`` (a name of :data:`SCENARIOS` or None) selects the domain; ``thermal``
    images are greyscale JPEGs (one channel on disk), all others RGB.
    """
    from PIL import Image, ImageDraw, ImageFilter

    scenario = get_scenario(scenario)
    name = scenario.name if scenario is not None else None
    rng = _stream(seed, split, index, scenario)
    size = params["imgsz"]
    thermal = name == "thermal"
    image = Image.fromarray(_thermal_background(rng, size) if thermal else _background(rng, size))
    draw = ImageDraw.Draw(image)
    _draw_clutter(draw, rng, size, grey=thermal)
    polygons = params.get("labels", LABELS) == "polygons"
    boxes = []
    for shape in _plan_image(rng, params, scenario):
        _draw_shape(draw, shape, rng, grey=thermal)
        if shape.class_index is not None:
            boxes.append(GtBox(shape.class_index, shape.x0, shape.y0, shape.x1 - shape.x0, shape.y1 - shape.y0,
                               mask=Mask((shape_polygon(shape),)) if polygons else None))
    if name == "lowlight":
        image = Image.fromarray(_low_light(np.asarray(image), rng))
    elif thermal:  # soft optics, then one channel
        image = image.convert("L").filter(ImageFilter.GaussianBlur(0.7))
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=params["jpeg_quality"])
    return buffer.getvalue(), boxes



# ------------------------------------------------------------------------------ the recipe
def _request(seed: Any, params: dict[str, Any], scenario: Scenario | None = None) -> dict:
    """The resolved options: what the manifest records and a later run compares.

    No ``scenario`` key for the default set (its images are those it had before scenarios);
    ``labels`` tells sets with polygon labels from those prepared with boxes only.
    """
    try:
        seed = int(seed)
    except (TypeError, ValueError):
        raise SyntheticOptionError(f"synthetic option seed={seed!r} must be an integer") from None
    extra = {"scenario": scenario.name} if scenario is not None else {}
    return {"generator_version": GENERATOR_VERSION, "seed": seed, **extra, **dict(sorted(params.items()))}


class SyntheticRecipe(Recipe):
    """``synthetic`` and its scenarios ``synthetic-SCENARIO``: drawn, then written by the writer."""

    name = NAME
    title = "Synthetic (generated offline)"
    classes = CLASS_NAMES
    splits = ("train", "val")
    eval_splits = ("train", "val")
    generated = True
    variants = tuple(SCENARIOS)
    options = (
        RecipeOption("seed", 0, "synthetic: random seed of the generator."),
    )
    manual_help = "The synthetic dataset is generated locally; it needs no source files."

    def __init__(self, scenario: Scenario | None = None) -> None:
        self.scenario = scenario
        if scenario is not None:
            self.name, self.title = scenario.dataset, scenario.title

    @classmethod
    def variant(cls, name: str) -> "SyntheticRecipe":
        """The recipe of ``synthetic-SCENARIO``.

        Raises:
            SyntheticOptionError: an unknown scenario; the message lists the dataset names.
        """
        try:
            return cls(scenario_of_dataset(name))
        except SyntheticOptionError as error:
            raise SyntheticOptionError(f"{name}: {error}") from None

    def resolve_options(self, given: dict[str, Any] | None) -> dict[str, Any]:
        """``seed`` and the generator options of :data:`DEFAULTS` (a scenario's own defaults
        first), checked.

        Raises:
            SyntheticOptionError: an unknown option, a bad value, or ``scenario`` (it comes
                from the dataset name).
        """
        given = dict(given or {})
        if "scenario" in given:
            raise SyntheticOptionError(
                f"option scenario is given by the dataset name ({', '.join(DATASET_NAMES)}), not as an option"
            )
        seed = given.pop("seed", 0)
        return _request(seed, _check_options(given, self.scenario), self.scenario)

    def convert(self, tree: SourceTree, splits: list[str], options: dict, log: ConversionLog) -> Conversion:
        params = {key: options[key] for key in DEFAULTS}
        scenario = self.scenario
        notes = [
            "generated by scsa_yolo.data.convert.recipes.synthetic (no source files); distractors are not labelled",
            *([f"scenario {scenario.name}: {scenario.title}; same classes as '{NAME}'"] if scenario else []),
        ]
        return Conversion(
            list(CLASS_NAMES),
            self._images(options["seed"], params),
            totals={"train": params["num_train"], "val": params["num_val"]},
            notes=notes,
            manifest_extra={"generator": dict(options), **({"scenario": scenario.name} if scenario else {})},
        )

    def _images(self, seed: int, params: dict[str, Any]) -> Iterator[tuple[str, ConvertedImage]]:
        size = params["imgsz"]
        for split, count in (("train", params["num_train"]), ("val", params["num_val"])):
            for index in range(count):
                data, boxes = render_image(seed, split, index, params, self.scenario)
                yield split, ConvertedImage(None, f"{split}_{index:05d}.jpg", size, size, boxes, data=data)
