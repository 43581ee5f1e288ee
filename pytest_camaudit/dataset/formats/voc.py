"""A Pascal VOC root: ``Annotations/<id>.xml``, ``ImageSets/Main/<split>.txt``, ``JPEGImages/``.

The image set ``ImageSets/Main/<split>.txt`` lists one image id per line; ``Annotations/<id>.xml``
names the image (``<filename>``, in ``JPEGImages/``; ``<id>.jpg`` without one), its ``<size>`` and
its ``<object>`` elements (``<name>``, ``<difficult>``, ``<bndbox>``). The XML is parsed with
defusedxml (an annotation file is data: no entity expansion, no external references).

**Boxes.** VOC numbers pixels from 1 and its ``<bndbox>`` names the first and the last pixel
*inside* the box (``xmax - xmin + 1`` pixels wide). The package's box is pixel *edges* with pixels
numbered from 0 (pixel ``x`` covers ``[x, x + 1)``), so ``[x1, y1, x2, y2] = [xmin - 1, ymin - 1,
xmax, ymax]`` — exactly the same pixels (the conversion detectron2 applies). A box may reach 1 px
past the image (``xmin = 0`` is a common slip) and is then clipped.

``difficult`` objects are not objects to detect, like COCO crowds. Each broken image (no XML, an
XML that does not parse, a box that is degenerate or outside the image, a missing image file) is a
problem of its entry naming the file and line; a root without the folders, or without the image
set, raises :class:`~pytest_camaudit.errors.DatasetError`.
"""

from __future__ import annotations

import math
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from ...datatypes import Box
from ...errors import DatasetError
from .base import Annotation, DatasetFormat, LabelledImage, LabelledSet, clip_box, exif_size, find_line, safe_id, unique_ids


def _check(root: Path, split: str) -> None:
    """Raises :class:`DatasetError` unless ``root`` has the VOC folders and the image set ``split``."""
    if not (root / "Annotations").is_dir() or not (root / "JPEGImages").is_dir():
        years = sorted(p.name for p in root.glob("VOC*") if (p / "Annotations").is_dir())
        if years:
            raise DatasetError(f"{root} is a VOCdevkit folder, not a VOC root; pass one of its datasets: {', '.join(str(root / y) for y in years)}")
        raise DatasetError(f"{root} is a folder but not a Pascal VOC root (Annotations/, ImageSets/Main/ and JPEGImages/); "
                           "--camaudit-cases takes a COCO .json file, an ultralytics dataset .yaml or a VOC root folder")
    sets = root / "ImageSets" / "Main"
    if not (sets / f"{split}.txt").is_file():
        have = sorted(p.stem for p in sets.glob("*.txt") if "_" not in p.stem) if sets.is_dir() else []
        raise DatasetError(f"{root}: no image set '{split}' (ImageSets/Main/{split}.txt; it has: {', '.join(have) or 'none'}); "
                           "pick one with --camaudit-cases-split (marker: split=)")


def _number(text: str | None) -> float | None:
    try:
        v = float((text or "").strip())
    except ValueError:
        return None
    return v if math.isfinite(v) else None


def _size(doc: Any) -> tuple[int, int] | None:
    w, h = _number(doc.findtext("size/width")), _number(doc.findtext("size/height"))
    return (int(w), int(h)) if w and h and w > 0 and h > 0 else None


def _object(obj: Any, size: tuple[int, int] | None) -> tuple[str, Box, bool] | str:
    """One ``<object>`` as ``(name, box, difficult)``, or what is wrong with it."""
    name = (obj.findtext("name") or "").strip()
    if not name:
        return "the <object> has no <name>"
    vals = [_number(obj.findtext(f"bndbox/{k}")) for k in ("xmin", "ymin", "xmax", "ymax")]
    if any(v is None for v in vals):
        return f"{name}: <bndbox> needs the numbers xmin, ymin, xmax, ymax"
    xmin, ymin, xmax, ymax = (float(v) for v in vals if v is not None)
    box, why = clip_box((xmin - 1, ymin - 1, xmax, ymax), size)
    if box is None:
        return f"{name}: <bndbox> xmin={xmin:g} ymin={ymin:g} xmax={xmax:g} ymax={ymax:g} (1-based, inclusive) {why}"
    difficult = _number(obj.findtext("difficult")) or 0.0
    return name, box, difficult != 0


def _parse(data: bytes, where: str) -> Any:
    """The XML's root element, or the problem (a string) that keeps it from being read."""
    import defusedxml
    from defusedxml.ElementTree import ParseError, fromstring

    try:
        return fromstring(data)
    except ParseError as exc:
        return f"{where}:{exc.position[0]}: the XML does not parse: {exc}"
    except defusedxml.DefusedXmlException as exc:
        return f"{where}: refused: {exc} (an annotation file may not declare entities or a DTD)"


def _unread(root: Path, vid: str, where: str, problem: str) -> LabelledImage:
    """The entry of an image whose XML cannot be read: named after ``JPEGImages/<vid>.*`` when there is such a file."""
    found = sorted(p.name for p in (root / "JPEGImages").glob(f"{glob_escape(vid)}.*")) if vid and not vid.startswith(".") else []
    name = found[0] if found else f"{vid}.jpg"
    return LabelledImage(safe_id(name), str(root / "JPEGImages" / name), vid, where, problems=(problem,))


def _image(root: Path, vid: str, origin: str) -> LabelledImage:
    where = f"Annotations/{vid}.xml"
    if "/" in vid or "\\" in vid or vid.startswith("."):
        return _unread(root, "", where, f"{origin}: {vid!r} is not an image id (a file name without folder or extension)")
    try:
        data = (root / where).read_bytes()
    except OSError:
        return _unread(root, vid, where, f"{origin}: image id {vid!r} has no annotation file {where}")
    doc = _parse(data, where)
    if isinstance(doc, str):
        return _unread(root, vid, where, doc)
    filename = (doc.findtext("filename") or "").strip() or f"{vid}.jpg"
    image = root / "JPEGImages" / filename
    problems = [] if image.is_file() else [f"{where}: image file not found: JPEGImages/{filename}"]
    size = _size(doc)
    if size is None and image.is_file():
        try:
            size = exif_size(image)
        except OSError:
            size = None  # the audit says what is wrong with the file
    lines = find_line(data.decode("utf-8", "replace"), r"<object[\s>]")
    annotations = []
    for k, obj in enumerate(doc.findall("object"), 1):
        found = _object(obj, size)
        if isinstance(found, str):
            problems.append(f"{where}:{lines[k - 1] if k <= len(lines) else '?'}: {found}")
        else:
            annotations.append(Annotation(k, found[0], found[1], None, found[2]))
    return LabelledImage(safe_id(filename), str(image), vid, where, size, tuple(annotations), tuple(problems))


def read(root: Path, split: str = "val", images_dir: Path | None = None) -> LabelledSet:
    """Read the image set ``split`` of the VOC root ``root``; class names are those its objects use.

    Raises:
        DatasetError: not a VOC root, or no such image set.
    """
    _check(root, split)
    list_file = root / "ImageSets" / "Main" / f"{split}.txt"
    try:
        lines = list_file.read_text(encoding="utf-8-sig").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{root}: cannot read the image set {list_file}: {exc}") from None
    images = [_image(root, line.split()[0], f"ImageSets/Main/{split}.txt:{i}") for i, line in enumerate(lines, 1) if line.strip()]
    if not images:
        raise DatasetError(f"{root}: the image set ImageSets/Main/{split}.txt lists no image id")
    names = tuple(sorted({a.name for im in images for a in im.annotations}))
    return LabelledSet(str(root), names, tuple(unique_ids(images)))


FORMAT = DatasetFormat("voc", "a Pascal VOC root folder", lambda p: p.is_dir(), _check, read)
