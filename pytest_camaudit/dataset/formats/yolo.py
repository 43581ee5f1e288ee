"""An ultralytics (YOLO) dataset: a dataset YAML (:mod:`.yolo_config`) and one label file per image.

A label file (``labels/…/<image stem>.txt`` beside ``images/…``, ultralytics' ``img2label_paths``)
has one region per line, coordinates normalised by the image's width and height *as displayed*
(after EXIF rotation, ultralytics' ``exif_size``):

* ``class cx cy w h``: a box;
* ``class x1 y1 x2 y2 x3 y3 …`` (an odd number of fields ≥ 7): a segmentation polygon; its box is
  the polygon's bounds (ultralytics' ``segments2boxes``) and the polygon is kept as its outline.

As ultralytics does: an image without a label file (or with an empty one) is a background image
(no objects to check), coordinates may stray 1 % outside ``[0, 1]`` (the box is then clipped to the
image), a file may not mix box and polygon rows, and a repeated row counts once. Keypoint (pose)
rows are refused. Each broken line is a problem of its image's entry naming ``file:line``.
"""

from __future__ import annotations

import math
from pathlib import Path

from ...datatypes import Box, PolygonOutline
from ...errors import DatasetError
from .base import Annotation, DatasetFormat, LabelledImage, LabelledSet, clip_box, exif_size, safe_id, shown, unique_ids
from .yolo_config import YoloConfig, label_path, list_images, load_config

TOLERANCE = 0.01
"""How far outside ``[0, 1]`` a normalised coordinate may be (ultralytics' own check)."""

Region = tuple[str, Box, PolygonOutline | None]


def _numbers(fields: list[str]) -> list[float] | None:
    try:
        vals = [float(f) for f in fields]
    except ValueError:
        return None
    return vals if all(math.isfinite(v) for v in vals) else None


def _region(fields: list[str], names: tuple[str, ...], size: tuple[int, int]) -> Region | str:
    """One label line as ``(class name, box, outline)``, or what is wrong with it."""
    n = len(fields)
    if n != 5 and (n < 7 or n % 2 == 0):
        pose = "; keypoint (pose) labels are not supported" if n > 5 else ""
        return f"expected 5 fields 'class cx cy w h' (a box) or 'class x1 y1 x2 y2 x3 y3 …' (a polygon: an odd number >= 7), got {n}{pose}"
    vals = _numbers(fields)
    if vals is None:
        return f"expected numbers, got {' '.join(fields)[:80]!r}"
    cls, coords = vals[0], vals[1:]
    if cls != int(cls) or not 0 <= cls < len(names):
        return f"class id {fields[0]} is not in names (0..{len(names) - 1} of the dataset YAML)"
    bad = [f for f, v in zip(fields[1:], coords, strict=True) if not -TOLERANCE <= v <= 1 + TOLERANCE]
    if bad:
        return f"coordinate {bad[0]} is outside [0, 1] (YOLO labels are normalised by the image's width and height)"
    w_img, h_img = size
    outline = None
    if n == 5:
        cx, cy, w, h = coords
        box = ((cx - w / 2) * w_img, (cy - h / 2) * h_img, (cx + w / 2) * w_img, (cy + h / 2) * h_img)
    else:
        ring = tuple(v * (w_img if i % 2 == 0 else h_img) for i, v in enumerate(coords))
        outline = PolygonOutline((ring,))
        box = outline.bounds()
    clipped, why = clip_box(box, size, tolerance=math.inf)  # the coordinates were checked: clip what the corners overshoot
    if clipped is None:
        return f"box {why}"
    return names[int(cls)], clipped, outline


def _read_labels(text: str, names: tuple[str, ...], size: tuple[int, int], where: str) -> tuple[list[Annotation], list[str]]:
    annotations: list[Annotation] = []
    problems: list[str] = []
    seen: set[tuple[str, ...]] = set()
    kinds: dict[bool, int] = {}  # polygon? → first line
    for number, line in enumerate(text.splitlines(), 1):
        fields = line.split()
        if not fields or tuple(fields) in seen:
            continue
        seen.add(tuple(fields))
        region = _region(fields, names, size)
        if isinstance(region, str):
            problems.append(f"{where}:{number}: {region}")
            continue
        kinds.setdefault(region[2] is not None, number)
        annotations.append(Annotation(number, *region))
    if len(kinds) == 2:
        problems.append(f"{where}:{max(kinds.values())}: the file mixes box rows (5 fields) and polygon rows; ultralytics refuses such "
                        "a file: write every row of an image one way")
    return annotations, problems


def _test_id(image: Path, config: YoloConfig) -> str:
    for base in (*(s for s in config.sources if s.is_dir()), config.root):
        if image.is_relative_to(base):
            return image.relative_to(base).as_posix()
    return image.name


def _image(path: str, origin: str | None, config: YoloConfig) -> LabelledImage:
    image = Path(path).absolute()
    labels = Path(label_path(str(image)))
    where = shown(labels, config.root)
    base = LabelledImage(safe_id(_test_id(image, config)), str(image), shown(image, config.root), where)
    if not image.is_file():
        return _with(base, [f"{origin + ': ' if origin else ''}image file not found: {image}"])
    if not labels.is_file():
        return base  # a background image: no objects
    try:
        text = labels.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        return _with(base, [f"{where}: cannot read the label file: {exc}"])
    if not text.strip():
        return base
    try:
        size = exif_size(image)
    except OSError as exc:
        return _with(base, [f"image file {shown(image, config.root)} is not an image Pillow can read ({exc}); its labels cannot be placed"])
    annotations, problems = _read_labels(text, config.names, size, where)
    return LabelledImage(base.id, base.path, base.image_id, where, size, tuple(annotations), tuple(problems))


def _with(image: LabelledImage, problems: list[str]) -> LabelledImage:
    from dataclasses import replace

    return replace(image, problems=tuple(problems))


def read(yaml_path: Path, split: str = "val", images_dir: Path | None = None) -> LabelledSet:
    """Read the ``split`` of the dataset YAML ``yaml_path``: one image per entry.

    Raises:
        DatasetError: the YAML cannot be used (:func:`.yolo_config.load_config`), or its split holds no image.
    """
    config = load_config(yaml_path, split)
    found = list_images(config)
    if not found:
        raise DatasetError(f"{yaml_path}: {split}: no images in {', '.join(map(str, config.sources))} "
                           "(image files end in .jpg, .png…; a .txt list names one image per line)")
    images = [_image(path, origin, config) for path, origin in found]
    return LabelledSet(str(yaml_path), config.names, tuple(unique_ids(images)))


def _check(path: Path, split: str) -> None:
    load_config(path, split)


FORMAT = DatasetFormat("yolo", "an ultralytics dataset YAML", lambda p: p.suffix.lower() in (".yaml", ".yml"), _check, read)
