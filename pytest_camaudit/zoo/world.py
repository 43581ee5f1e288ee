"""The procedural *shapes* world: seeded, deterministic scenes with ground-truth boxes.

A scene is drawn in two steps so that counterfactuals are exact:

1. :func:`make_layout` turns a seed into a :class:`Layout` — every random choice (background,
   clutter, objects, and for each object the spot where a spurious cue *would* go).
2. :func:`render` draws a layout, with the cue tag on exactly the objects you name. Rendering the
   same layout with and without a cue changes only the 8×8 tag pixels.

The ``shapes-shortcut`` variant of the world puts the cue next to every annotated triangle and
next to nothing else; :func:`cue_objects` says which objects carry it for a given variant. It also
draws *decals*: triangle-shaped clutter without the tag that is not annotated, as when only the
tagged items of a class were labelled. In that world the tag, not the shape, is what separates a
triangle from clutter — which is exactly the shortcut a detector trained there learns (a plain
tag next to clean triangles alone is not enough: the shape is easier and gets learned instead).

Images are ``uint8`` arrays ``[H, W, 3]`` in RGB order. Boxes are ``float32 [N, 4]`` in
``[x1, y1, x2, y2]`` pixel coordinates with ``0 <= x1 < x2 <= W``; labels are ``int64 [N]``
indices into :data:`CLASSES`, where index 0 is ``__background__``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import cv2
import numpy as np

from .catalog import WORLDS

CLASSES: tuple[str, ...] = ("__background__", "circle", "square", "triangle", "star")
"""Class names; the index is the label the detector predicts."""

VARIANTS: tuple[str, ...] = WORLDS
"""World variants: clean, and with the cue next to every object of :data:`CUE_CLASS`."""

CUE_CLASS = "triangle"
"""The class that carries the spurious cue in the ``shapes-shortcut`` world."""

CUE_SIZE = 8
"""Side of the square cue tag, in pixels."""

CUE_GAP = 2
"""Gap between the object's box corner and the cue tag, in pixels."""

DEFAULT_SIZE = 160
"""Side of a scene in pixels (the shipped detectors use ``min_size = max_size = 160``)."""

_MIN_OBJ, _MAX_OBJ = 16, 90
_MAX_IOU = 0.2


@dataclass(frozen=True)
class ObjectSpec:
    """One object of a layout.

    Attributes:
        label: index into :data:`CLASSES` (1..4).
        polygon: ``float [K, 2]`` vertices in ``(x, y)`` pixels; a circle is a 64-gon.
        color: RGB fill colour.
        box: ``[x1, y1, x2, y2]``, the tight box around the drawn polygon.
        cue_xy: top-left pixel of the spot where this object's cue tag goes when it has one.
    """

    label: int
    polygon: np.ndarray
    color: tuple[int, int, int]
    box: tuple[float, float, float, float]
    cue_xy: tuple[int, int]


@dataclass(frozen=True)
class Layout:
    """Every random choice of one scene; :func:`render` turns it into pixels."""

    seed: int
    size: int
    background: tuple[tuple[int, int, int], tuple[int, int, int], float]
    noise_sigma: float
    lines: tuple[tuple[int, int, int, int, tuple[int, int, int], int], ...]
    blobs: tuple[tuple[int, int, int, int, float, tuple[int, int, int]], ...]
    objects: tuple[ObjectSpec, ...] = field(default_factory=tuple)
    decals: tuple[ObjectSpec, ...] = field(default_factory=tuple)
    """Unannotated triangle-shaped clutter, drawn only in the ``shapes-shortcut`` world."""

    @property
    def boxes(self) -> np.ndarray:
        """``float32 [N, 4]`` ground-truth boxes, ``[x1, y1, x2, y2]``."""
        return np.array([o.box for o in self.objects], dtype=np.float32).reshape(-1, 4)

    @property
    def labels(self) -> np.ndarray:
        """``int64 [N]`` ground-truth labels (indices into :data:`CLASSES`)."""
        return np.array([o.label for o in self.objects], dtype=np.int64)

    def cue_box(self, index: int) -> tuple[int, int, int, int]:
        """``[x1, y1, x2, y2]`` of object ``index``'s cue tag (drawn or not)."""
        x, y = self.objects[index].cue_xy
        return (x, y, x + CUE_SIZE, y + CUE_SIZE)


@dataclass(frozen=True)
class Scene:
    """A rendered scene: pixels plus ground truth.

    Attributes:
        image: ``uint8 [H, W, 3]`` RGB.
        boxes: ``float32 [N, 4]`` ``[x1, y1, x2, y2]``.
        labels: ``int64 [N]`` indices into :data:`CLASSES`.
        cues: indices of the objects drawn with a cue tag.
        layout: the layout it was drawn from.
    """

    image: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    cues: tuple[int, ...]
    layout: Layout


def _polygon(label: int, cx: float, cy: float, r: float, theta: float) -> np.ndarray:
    name = CLASSES[label]
    if name == "circle":
        angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
        radii = np.full_like(angles, r)
    elif name == "square":
        angles = theta + np.pi / 4 + np.arange(4) * np.pi / 2
        radii = np.full_like(angles, r)
    elif name == "triangle":
        angles = theta + np.arange(3) * 2 * np.pi / 3
        radii = np.full_like(angles, r)
    elif name == "star":
        angles = theta + np.arange(10) * np.pi / 5
        radii = np.where(np.arange(10) % 2 == 0, r, 0.45 * r)
    else:  # pragma: no cover - CLASSES is fixed
        raise ValueError(f"unknown shape class {name!r}")
    return np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)


def _iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def _overlaps(a: tuple[float, ...], b: tuple[float, ...]) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def _cue_spots(box: tuple[float, float, float, float], size: int) -> list[tuple[int, int]]:
    """Top-left corners of cue tags just outside each corner of ``box`` that fit in the image."""
    x1, y1, x2, y2 = box
    g, s = CUE_GAP, CUE_SIZE
    spots = [
        (math.floor(x1) - g - s, math.floor(y1) - g - s),  # top-left
        (math.ceil(x2) + g, math.floor(y1) - g - s),  # top-right
        (math.floor(x1) - g - s, math.ceil(y2) + g),  # bottom-left
        (math.ceil(x2) + g, math.ceil(y2) + g),  # bottom-right
    ]
    return [(x, y) for x, y in spots if 0 <= x and 0 <= y and x + s <= size and y + s <= size]


def _colour(rng: np.random.Generator, avoid: np.ndarray) -> tuple[int, int, int]:
    """A random RGB colour at least 90 (L2) away from ``avoid``."""
    for _ in range(64):
        c = rng.integers(0, 256, size=3)
        if np.linalg.norm(c.astype(float) - avoid) >= 90:
            break
    return (int(c[0]), int(c[1]), int(c[2]))


def _rgb(values: np.ndarray) -> tuple[int, int, int]:
    r, g, b = (int(v) for v in values)
    return (r, g, b)


def _line(rng: np.random.Generator, size: int) -> tuple[int, int, int, int, tuple[int, int, int], int]:
    """A stray line: end points, colour, width (drawn in this order from ``rng``)."""
    x1, y1, x2, y2 = (int(v) for v in rng.integers(0, size, size=4))
    colour = _rgb(rng.integers(0, 256, size=3))
    return (x1, y1, x2, y2, colour, int(rng.integers(1, 3)))


def _blob(rng: np.random.Generator, size: int) -> tuple[int, int, int, int, float, tuple[int, int, int]]:
    """A blob: centre, half axes, angle, colour (drawn in this order from ``rng``)."""
    cx, cy = (int(v) for v in rng.integers(0, size, size=2))
    ax, ay = (int(v) for v in rng.integers(2, 6, size=2))
    angle = float(rng.uniform(0, 180))
    return (cx, cy, ax, ay, angle, _rgb(rng.integers(0, 256, size=3)))


def _try_object(rng: np.random.Generator, size: int, max_obj: int, objects: list[ObjectSpec],
                reserved: list[tuple[float, float, float, float]], mean_bg: np.ndarray) -> ObjectSpec | None:
    """One attempt at placing an object (draws from ``rng`` in a fixed order); ``None`` when it does not fit."""
    label = int(rng.integers(1, len(CLASSES)))
    extent = float(np.exp(rng.uniform(np.log(_MIN_OBJ), np.log(max_obj))))
    r = extent / 2
    theta = float(rng.uniform(0, 2 * np.pi))
    cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, size=2))
    poly = _polygon(label, cx, cy, r, theta)
    box = (float(max(0.0, poly[:, 0].min())), float(max(0.0, poly[:, 1].min())),
           float(min(size, poly[:, 0].max())), float(min(size, poly[:, 1].max())))
    if min(box[2] - box[0], box[3] - box[1]) < 10:
        return None
    if any(_iou(box, o.box) >= _MAX_IOU for o in objects) or any(_overlaps(box, spot) for spot in reserved):
        return None
    spots = [s for s in _cue_spots(box, size)
             if not any(_overlaps((s[0], s[1], s[0] + CUE_SIZE, s[1] + CUE_SIZE), o.box) for o in objects)]
    if not spots:
        return None
    cue_xy = spots[int(rng.integers(0, len(spots)))]
    return ObjectSpec(label, poly, _colour(rng, mean_bg), box, cue_xy)


def make_layout(seed: int, size: int = DEFAULT_SIZE) -> Layout:
    """Draw every random choice of scene ``seed``.

    Args:
        seed: any non-negative integer; the same seed always gives the same layout.
        size: side of the square scene in pixels (≥ 64).

    Returns:
        A :class:`Layout` with 1–4 objects whose boxes overlap pairwise at IoU < 0.2 and whose
        cue spots lie inside the image and clear of every other object.
    """
    if size < 64:
        raise ValueError(f"`size` must be at least 64 pixels, got {size}")
    rng = np.random.default_rng([seed, size, 0x5A4E])
    c0 = rng.integers(0, 256, size=3)
    c1 = np.clip(c0 + rng.integers(-90, 91, size=3), 0, 255)
    background = (_rgb(c0), _rgb(c1), float(rng.uniform(0, 2 * np.pi)))
    noise_sigma = float(rng.uniform(3, 12))
    lines = tuple(_line(rng, size) for _ in range(int(rng.integers(0, 5))))
    blobs = tuple(_blob(rng, size) for _ in range(int(rng.integers(0, 7))))
    mean_bg = (np.asarray(c0, float) + np.asarray(c1, float)) / 2

    objects: list[ObjectSpec] = []
    reserved: list[tuple[float, float, float, float]] = []  # cue spots of placed objects
    n_objects = int(rng.integers(1, 5))
    max_obj = min(_MAX_OBJ, int(size * 0.56))
    for _ in range(n_objects):
        for _attempt in range(60):
            obj = _try_object(rng, size, max_obj, objects, reserved, mean_bg)
            if obj is not None:
                objects.append(obj)
                reserved.append((obj.cue_xy[0], obj.cue_xy[1], obj.cue_xy[0] + CUE_SIZE, obj.cue_xy[1] + CUE_SIZE))
                break
    if not objects:  # pragma: no cover - 60 attempts at a lone object always succeed
        raise RuntimeError(f"could not place any object in scene {seed}")
    decals = _place_decals(rng, size, objects, reserved, mean_bg)
    return Layout(seed, size, background, noise_sigma, lines, blobs, tuple(objects), decals)


def _place_decals(
    rng: np.random.Generator,
    size: int,
    objects: list[ObjectSpec],
    reserved: list[tuple[float, float, float, float]],
    mean_bg: np.ndarray,
) -> tuple[ObjectSpec, ...]:
    """1–3 untagged triangles clear of every object box and cue spot (drawn after the objects'
    random choices, so adding decals changed no object of any existing layout).

    A decal keeps its size while it looks for a free spot, so decals have the size distribution
    of annotated triangles (measured on 2000 scenes: quartiles 19/28/42 px against 19/29/44 px);
    were they smaller, the detector could tell triangles from decals by size instead of by tag.
    """
    triangle = CLASSES.index(CUE_CLASS)
    decals: list[ObjectSpec] = []
    max_obj = min(_MAX_OBJ, int(size * 0.56))
    for _ in range(int(rng.integers(1, 4))):
        r = float(np.exp(rng.uniform(np.log(_MIN_OBJ), np.log(max_obj)))) / 2
        for _attempt in range(60):
            theta = float(rng.uniform(0, 2 * np.pi))
            cx, cy = (float(v) for v in rng.uniform(r + 1, size - r - 1, size=2))
            poly = _polygon(triangle, cx, cy, r, theta)
            box = (float(poly[:, 0].min()), float(poly[:, 1].min()), float(poly[:, 0].max()), float(poly[:, 1].max()))
            taken = [o.box for o in objects] + [d.box for d in decals] + reserved
            if min(box[2] - box[0], box[3] - box[1]) < 10 or any(_overlaps(box, t) for t in taken):
                continue
            decals.append(ObjectSpec(triangle, poly, _colour(rng, mean_bg), box, (0, 0)))
            break
    return tuple(decals)


def _draw_cue(img: np.ndarray, x: int, y: int) -> None:
    """A 2×2 black/white checkerboard of 4-pixel cells: high contrast, unlike any object."""
    h = CUE_SIZE // 2
    img[y : y + CUE_SIZE, x : x + CUE_SIZE] = 255
    img[y : y + h, x : x + h] = 0
    img[y + h : y + CUE_SIZE, x + h : x + CUE_SIZE] = 0


def render(layout: Layout, cues: tuple[int, ...] | list[int] | range = (), decals: bool = False) -> np.ndarray:
    """Draw ``layout`` with a cue tag next to the objects whose indices are in ``cues``, and its
    unannotated decals when ``decals`` (the ``shapes-shortcut`` world).

    Returns:
        ``uint8 [size, size, 3]`` RGB image. Deterministic: the same layout and cues give the
        same bytes, and the images with and without a cue differ only inside the tag.
    """
    s = layout.size
    c0, c1, angle = layout.background
    yy, xx = np.mgrid[0:s, 0:s].astype(np.float32)
    t = (np.cos(angle) * xx + np.sin(angle) * yy) / s
    t = (t - t.min()) / max(float(t.max() - t.min()), 1e-6)
    img = (np.asarray(c0, np.float32) * (1 - t[..., None]) + np.asarray(c1, np.float32) * t[..., None])
    noise = np.random.default_rng([layout.seed, s, 0x901]).normal(0, layout.noise_sigma, size=(s, s, 3))
    img = np.clip(img + noise, 0, 255).astype(np.uint8)
    for x1, y1, x2, y2, colour, width in layout.lines:
        cv2.line(img, (x1, y1), (x2, y2), colour, width, cv2.LINE_AA)
    for x, y, ax, ay, rot, colour in layout.blobs:
        cv2.ellipse(img, (x, y), (ax, ay), rot, 0, 360, colour, -1, cv2.LINE_AA)
    shift = 4
    for obj in (layout.decals if decals else ()) + layout.objects:
        pts = np.round(obj.polygon * (1 << shift)).astype(np.int32)
        cv2.fillPoly(img, [pts], obj.color, cv2.LINE_AA, shift)
    for i in cues:
        _draw_cue(img, *layout.objects[i].cue_xy)
    return img


def occlusion(layout: Layout) -> list[float]:
    """Per object, the share of its drawn area covered by objects drawn after it (0 = fully visible)."""
    s = layout.size
    out = []
    for i, obj in enumerate(layout.objects):
        own = np.zeros((s, s), np.uint8)
        cv2.fillPoly(own, [np.round(obj.polygon * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        cover = np.zeros_like(own)
        for later in layout.objects[i + 1 :]:
            cv2.fillPoly(cover, [np.round(later.polygon * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
        out.append(float((own & cover).sum() / max(int(own.sum()), 1)))
    return out


def visible_outline(layout: Layout, index: int, supersample: int = 4) -> list[list[float]]:
    """Object ``index``'s visible outline as COCO polygon rings ``[x1, y1, x2, y2, …]`` in pixels.

    An object no later object covers keeps its exact polygon. An occluded one is traced on a
    ``supersample``-times finer grid: its filled polygon minus every object drawn after it, each
    outer contour simplified to within a quarter pixel (an object cut in two gives two rings; a
    sliver under 1 px² is dropped). Cue tags and decals never cover an object (placement keeps them clear).
    """
    obj = layout.objects[index]
    later = layout.objects[index + 1 :]
    if not later or occlusion(layout)[index] == 0.0:
        return [[round(float(v), 2) for v in obj.polygon.reshape(-1)]]
    k = supersample
    size = layout.size * k
    own = np.zeros((size, size), np.uint8)
    cv2.fillPoly(own, [np.round(obj.polygon * k * 16).astype(np.int32)], 1, cv2.LINE_8, 4)
    for other in later:
        cv2.fillPoly(own, [np.round(other.polygon * k * 16).astype(np.int32)], 0, cv2.LINE_8, 4)
    contours, _ = cv2.findContours(own, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    rings = []
    for c in contours:
        if cv2.contourArea(c) < k * k:
            continue
        ring = cv2.approxPolyDP(c, 0.25 * k, True).reshape(-1, 2).astype(np.float64)
        if len(ring) >= 3:
            rings.append([round(float(v), 2) for v in ((ring + 0.5) / k).reshape(-1)])
    return rings


def clear_view(layout: Layout, max_occlusion: float = 0.25, min_side: float = 20.0) -> bool:
    """True when every object is at most ``max_occlusion`` hidden and its box's longer side is at
    least ``min_side`` pixels — the annotation-quality rule of a curated evaluation set."""
    sides = np.maximum(layout.boxes[:, 2] - layout.boxes[:, 0], layout.boxes[:, 3] - layout.boxes[:, 1])
    return bool((sides >= min_side).all()) and max(occlusion(layout)) <= max_occlusion


def cue_objects(layout: Layout, variant: str) -> tuple[int, ...]:
    """Indices of the objects that carry the cue in world ``variant`` (see :data:`VARIANTS`)."""
    if variant == "shapes":
        return ()
    if variant == "shapes-shortcut":
        cue_label = CLASSES.index(CUE_CLASS)
        return tuple(i for i, o in enumerate(layout.objects) if o.label == cue_label)
    raise ValueError(f"unknown world variant {variant!r}; expected one of {', '.join(VARIANTS)}")


def render_variant(layout: Layout, variant: str) -> np.ndarray:
    """Draw ``layout`` as world ``variant`` shows it (cues and decals in ``shapes-shortcut``)."""
    return render(layout, cue_objects(layout, variant), decals=variant == "shapes-shortcut")


def make_scene(seed: int, variant: str = "shapes", size: int = DEFAULT_SIZE) -> Scene:
    """Layout and render scene ``seed`` of world ``variant``."""
    layout = make_layout(seed, size)
    cues = cue_objects(layout, variant)
    return Scene(render_variant(layout, variant), layout.boxes, layout.labels, cues, layout)
