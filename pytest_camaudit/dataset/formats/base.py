"""What every dataset reader returns, whichever format it read, and the helpers they share.

A reader turns a file (or a folder) into a :class:`LabelledSet`: one :class:`LabelledImage` per
image, each with its :class:`Annotation` objects in the package's box convention (``(x1, y1, x2,
y2)`` pixel edges of the image as audited, i.e. after EXIF rotation) and the *problems* of that
image, each naming the file and, where there is one, the line. Class names stay the dataset's own:
mapping them to the detector's and giving objects their thresholds is
:func:`pytest_camaudit.dataset.entries.load_entries`' business, so nothing above the readers
knows which format an entry came from.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ...datatypes import Box, ObjectOutline
from ...fileio import open_image

IMAGE_SUFFIXES = frozenset({"avif", "bmp", "dng", "heic", "heif", "jp2", "jpeg", "jpg", "mpo", "png", "tif", "tiff", "webp"})
"""Image file extensions (ultralytics' ``IMG_FORMATS``): what a folder split of a dataset YAML lists."""

EDGE_TOLERANCE = 1.0
"""Pixels a box may reach past the image's edge before it is an error (then it is clipped)."""


@dataclass(frozen=True)
class Annotation:
    """One annotated region as read.

    Attributes:
        id: the format's own id of the region (COCO annotation id, line of a YOLO label file, index
            of the ``<object>`` in a VOC file, from 1).
        name: the dataset's class name.
        box: ``(x1, y1, x2, y2)`` pixel edges, inside the image.
        outline: the region's polygons or mask, when the annotation has one.
        ignore: not an object to detect (COCO ``iscrowd``, VOC ``difficult``).
    """

    id: Any
    name: str
    box: Box
    outline: ObjectOutline | None = None
    ignore: bool = False


@dataclass(frozen=True)
class LabelledImage:
    """One image and its annotations.

    Attributes:
        id: the test id (the image's file name, or its path below the split's folder).
        path: the image file.
        image_id: the format's id of the image (COCO id, VOC id, the image's path for YOLO).
        where: where its annotations are, for messages (``"image id 3"``, ``"labels/val/a.txt"``).
        size: ``(width, height)`` as the annotations give it (after EXIF rotation), when known.
        annotations: the regions, in file order.
        problems: what is wrong with this image's entry, each naming its file and line.
        info: extra keys of the image's record (COCO), for the test to use.
        skipped: regions not to detect that were left out for want of a usable box (a COCO crowd
            with a broken ``bbox``): counted, never checked.
    """

    id: str
    path: str
    image_id: Any
    where: str
    size: tuple[int, int] | None = None
    annotations: tuple[Annotation, ...] = ()
    problems: tuple[str, ...] = ()
    info: Mapping[str, Any] = field(default_factory=dict)
    skipped: int = 0


@dataclass(frozen=True)
class LabelledSet:
    """A whole dataset as read.

    Attributes:
        source: the file or folder read.
        names: the class names it declares (COCO categories, YAML ``names``; VOC: those it uses).
        images: one per image of the split.
        problem: what makes the whole file unusable (COCO only: a YAML or VOC root that cannot be
            used raises :class:`~pytest_camaudit.errors.DatasetError` instead).
    """

    source: str
    names: tuple[str, ...] = ()
    images: tuple[LabelledImage, ...] = ()
    problem: str | None = None


@dataclass(frozen=True)
class DatasetFormat:
    """A reader, and what it reads.

    Attributes:
        name: ``"coco"``, ``"yolo"``, ``"voc"``.
        what: how a message names such a path ("a COCO JSON file"…).
        matches: whether a path is of this format (by its name or kind, never by reading it).
        check: raises :class:`~pytest_camaudit.errors.DatasetError` when the path cannot be used for
            ``split`` at all (cheap: reads no label).
        read: ``read(path, split, images_dir)`` → the :class:`LabelledSet`.
    """

    name: str
    what: str
    matches: Callable[[Path], bool]
    check: Callable[[Path, str], None]
    read: Callable[[Path, str, Path | None], LabelledSet]


def shown(path: str | Path, root: Path) -> str:
    """``path`` relative to ``root`` when below it (forward slashes), else as given: how messages name a file."""
    p = Path(path)
    try:
        return p.relative_to(root).as_posix()
    except ValueError:
        return str(p)


def safe_id(name: str) -> str:
    """A test id: control characters replaced (they would break the terminal and the report)."""
    return re.sub(r"[\x00-\x1f]", "?", name) or "?"


def unique_ids(images: list[LabelledImage]) -> list[LabelledImage]:
    """Test ids must be unique: a repeated one gets "#2", "#3"…"""
    from dataclasses import replace

    seen: dict[str, int] = {}
    out = []
    for im in images:
        seen[im.id] = seen.get(im.id, 0) + 1
        out.append(replace(im, id=f"{im.id}#{seen[im.id]}") if seen[im.id] > 1 else im)
    return out


def exif_size(path: str | Path) -> tuple[int, int]:
    """``(width, height)`` of the image as audited: after EXIF rotation (orientations 5–8 swap the sides),
    read from the header only (ultralytics' ``exif_size``; the package's loader applies ``ImageOps.exif_transpose``).

    Raises:
        OSError: not an image Pillow can read.
    """
    with open_image(path) as img:
        w, h = img.size
        orientation = img.getexif().get(0x0112, 1)
    return (h, w) if orientation in (5, 6, 7, 8) else (w, h)


def clip_box(box: Box, size: tuple[int, int] | None, tolerance: float = EDGE_TOLERANCE) -> tuple[Box | None, str | None]:
    """``(box, None)`` clipped to the image when it lies inside it (within ``tolerance`` pixels), else ``(None, why)``."""
    x1, y1, x2, y2 = box
    if size is not None:
        w, h = size
        if x1 < -tolerance or y1 < -tolerance or x2 > w + tolerance or y2 > h + tolerance:
            return None, f"= [x1, y1, x2, y2] {_r(box)} lies outside the {w}x{h} image"
        x1, y1, x2, y2 = max(0.0, x1), max(0.0, y1), min(float(w), x2), min(float(h), y2)
    if not x2 > x1 or not y2 > y1:
        return None, f"is degenerate (needs x1 < x2 and y1 < y2, got [x1, y1, x2, y2] {_r(box)})"
    return (x1, y1, x2, y2), None


def _r(box: Box) -> list[float]:
    return [round(v, 2) for v in box]


def find_line(text: str, pattern: str) -> list[int]:
    """Lines (from 1) where ``pattern`` (a regex) starts in ``text``, XML comments skipped."""
    blanked = re.sub(r"<!--.*?-->", lambda m: re.sub(r"[^\n]", " ", m.group(0)), text, flags=re.S)
    return [blanked.count("\n", 0, m.start()) + 1 for m in re.finditer(pattern, blanked)]
