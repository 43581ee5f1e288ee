"""COCO JSON: ``images``, ``annotations``, ``categories`` in one file, the images in a folder.

Conventions followed: ``bbox = [x, y, width, height]`` in pixels (converted to ``[x1, y1, x2, y2]``,
kept as written: a box up to 1 px past the edge is accepted, not clipped), ``file_name`` relative
to the image folder, ``iscrowd = 1`` regions are not objects to detect. ``segmentation`` is kept
as the object's outline: polygons (lists ``[x1, y1, x2, y2, …]`` in pixels; rings of fewer than
3 points dropped) or run-length encoding (``{"size": [h, w], "counts": …}``, uncompressed lists
compressed with pycocotools); an empty one (``[]``, as box-only exporters write) is no outline.
Extra keys of an image entry (e.g. ``cue_boxes`` written by ``pytest_camaudit.zoo``) are kept in
its ``info``. A file that cannot be read at all is one problem of the whole file.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ...datatypes import Box, MaskOutline, ObjectOutline, PolygonOutline
from .base import Annotation, DatasetFormat, LabelledImage, LabelledSet, safe_id, unique_ids

_STANDARD_IMAGE_KEYS = {"id", "file_name", "width", "height", "license", "coco_url", "flickr_url", "date_captured"}


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _box(ann: Mapping[str, Any], size: tuple[int, int] | None) -> tuple[Box | None, str | None]:
    raw = ann.get("bbox")
    found = [_num(v) for v in raw] if isinstance(raw, (list, tuple)) else []
    vals = [v for v in found if v is not None]
    if len(found) != 4 or len(vals) != 4:
        return None, f"bbox {raw!r} is not 4 finite numbers [x, y, width, height]"
    x, y, w, h = vals
    if w <= 0 or h <= 0:
        return None, f"bbox {raw!r} is degenerate (width and height must be > 0; COCO boxes are [x, y, width, height])"
    box = (x, y, x + w, y + h)
    if size is not None:
        W, H = size
        if box[0] < -1 or box[1] < -1 or box[2] > W + 1 or box[3] > H + 1:
            return None, f"bbox {raw!r} = [x1, y1, x2, y2] {[round(v, 2) for v in box]} lies outside the {W}x{H} image"
    return box, None


def _polygons(seg: list[Any]) -> tuple[ObjectOutline | None, str | None]:
    rings = []
    for ring in seg:
        vals = [_num(v) for v in ring] if isinstance(ring, (list, tuple)) else [None]
        if any(v is None for v in vals) or len(vals) % 2:
            return None, "segmentation polygons must be lists of finite numbers [x1, y1, x2, y2, …] (an even count)"
        if len(vals) >= 6:
            rings.append(tuple(float(v) for v in vals if v is not None))
    return (PolygonOutline(tuple(rings)) if rings else None), None


def _rle(seg: Mapping[str, Any], size: tuple[int, int] | None) -> tuple[ObjectOutline | None, str | None]:
    hw, counts = seg.get("size"), seg.get("counts")
    if not (isinstance(hw, (list, tuple)) and len(hw) == 2 and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in hw)):
        return None, f"segmentation RLE size {hw!r} is not [height, width]"
    h, w = int(hw[0]), int(hw[1])
    if size is not None and (w, h) != size:
        return None, f"segmentation RLE size [height, width] = [{h}, {w}] differs from the {size[0]}x{size[1]} image"
    if isinstance(counts, str):
        return MaskOutline((h, w), counts.encode("ascii", "replace")), None
    if not (isinstance(counts, list) and all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in counts)) or sum(counts) != h * w:
        return None, f"segmentation RLE counts must be a string or whole numbers >= 0 summing to height x width = {h * w}"
    from pycocotools import mask as rle

    compressed = rle.frPyObjects({"size": [h, w], "counts": counts}, h, w)
    return MaskOutline((h, w), bytes(compressed["counts"])), None


def _outline(ann: Mapping[str, Any], size: tuple[int, int] | None) -> tuple[ObjectOutline | None, str | None]:
    """The annotation's ``segmentation`` as an outline (``None`` when it has none), or why it is unusable."""
    seg = ann.get("segmentation")
    if seg is None or seg == [] or seg == {}:
        return None, None
    if isinstance(seg, list):
        return _polygons(seg)
    if isinstance(seg, dict):
        return _rle(seg, size)
    return None, f"segmentation {str(seg)[:60]!r} is neither polygons nor an RLE mask {{size, counts}}"


def _document(ann_path: Path, folder: Path) -> dict[str, Any] | str:
    """The COCO document, or what makes the whole file unusable."""
    try:
        doc = json.loads(ann_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return f"annotation file {ann_path} does not exist"
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        return f"{type(exc).__name__}: {exc}; expected a COCO JSON file"
    if not isinstance(doc, dict) or not all(isinstance(doc.get(k), list) for k in ("images", "annotations", "categories")):
        return "not a COCO file: expected an object with lists 'images', 'annotations' and 'categories'"
    if not folder.is_dir():
        return f"image folder {folder} does not exist; pass --camaudit-cases-images or images="
    return doc


def _row(id_: str, image_id: Any, path: str = "", size: tuple[int, int] | None = None, problems: list[str] | None = None,
         info: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"id": id_, "image_id": image_id, "path": path, "size": size, "annotations": [], "problems": problems or [], "info": info or {},
            "skipped": 0}


def _image_rows(images: list[Any], folder: Path) -> dict[Any, dict[str, Any]]:
    """One row per ``images`` entry, keyed by image id (broken and repeated ids get keys of their own)."""
    rows: dict[Any, dict[str, Any]] = {}
    for i, im in enumerate(images):
        im = im if isinstance(im, dict) else {}
        iid, fname = im.get("id"), im.get("file_name")
        if iid is None or not isinstance(fname, str) or not fname:
            rows[("bad", i)] = _row(f"images[{i}]", iid if iid is not None else f"images[{i}]",
                                    problems=[f"images[{i}] needs an 'id' and a 'file_name', got {im!r}"[:300]])
            continue
        problems: list[str] = []
        if iid in rows:
            problems.append(f"image id {iid!r} is listed twice (also as {rows[iid]['id']}); ids must be unique")
            iid = ("dup", i)
        w, h = _num(im.get("width")), _num(im.get("height"))
        size = (int(w), int(h)) if w and h and w > 0 and h > 0 else None
        if ("width" in im or "height" in im) and size is None:
            problems.append(f"width/height {im.get('width')!r}x{im.get('height')!r} are not positive numbers")
        path = folder / fname
        if not path.is_file():
            problems.append(f"image file not found: {path}")
        rows[iid] = _row(safe_id(fname), im.get("id"), str(path), size, problems, {k: v for k, v in im.items() if k not in _STANDARD_IMAGE_KEYS})
    return rows


def _add_annotations(rows: dict[Any, dict[str, Any]], annotations: list[Any], categories: dict[Any, str]) -> None:
    """Each annotation becomes a region of its image's row, or a problem of it (or of an orphan row)."""
    known = ", ".join(f"{k} {v}" for k, v in list(categories.items())[:20])
    for j, ann in enumerate(annotations):
        ann = ann if isinstance(ann, dict) else {}
        aid = ann.get("id", f"annotations[{j}]")
        iid = ann.get("image_id")
        if not isinstance(iid, (int, str)) or isinstance(iid, bool) or iid not in rows:
            orphan = rows.setdefault(("orphan", repr(iid)), _row(f"image-id-{iid}-not-in-images", iid))
            orphan["problems"].append(f"annotation {aid!r} refers to image id {iid!r}, which is not in 'images'")
            continue
        e = rows[iid]
        cat = ann.get("category_id")
        box, why = _box(ann, e["size"])
        crowd = bool(ann.get("iscrowd"))
        if not crowd and cat not in categories:
            e["problems"].append(f"annotation {aid!r}: category_id {cat!r} is not in 'categories' (known: {known})")
            continue
        outline, bad_outline = _outline(ann, e["size"])
        if box is None or bad_outline:
            if not crowd:  # a crowd region is not checked: a bad box or outline there costs nothing
                e["problems"].append(f"annotation {aid!r} ({categories[cat]}): {why or bad_outline}")
            e["skipped"] += int(crowd)
            continue
        e["annotations"].append(Annotation(aid, categories.get(cat, str(cat)), box, outline, crowd))


def read(ann_path: Path, split: str = "val", images_dir: Path | None = None) -> LabelledSet:
    """Read a COCO file (``split`` does not apply: a COCO file is one split). Never raises for a bad file.

    ``images_dir`` defaults to ``images/`` beside the file when that folder exists, else the file's own folder.
    """
    folder = images_dir or (ann_path.parent / "images" if (ann_path.parent / "images").is_dir() else ann_path.parent)
    doc = _document(ann_path, folder)
    if isinstance(doc, str):
        return LabelledSet(str(ann_path), problem=doc)
    categories = {c.get("id"): str(c.get("name")) for c in doc["categories"] if isinstance(c, dict)}
    rows = _image_rows(doc["images"], folder)
    _add_annotations(rows, doc["annotations"], categories)
    images = [LabelledImage(e["id"], e["path"], e["image_id"], f"image id {e['image_id']!r}", e["size"], tuple(e["annotations"]),
                            tuple(e["problems"]), e["info"], e["skipped"]) for e in rows.values()]
    return LabelledSet(str(ann_path), tuple(dict.fromkeys(categories.values())), tuple(unique_ids(images)))


def _check(path: Path, split: str) -> None:
    """A COCO file's problems are the entries' (see :func:`read`)."""


FORMAT = DatasetFormat("coco", "a COCO JSON file", lambda p: p.suffix.lower() == ".json", _check, read)
