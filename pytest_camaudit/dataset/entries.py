"""Data-driven cases: a COCO annotation file + image folder → one audit case per image.

:func:`load_entries` reads the file without touching torch or the images (it only checks that the
files exist) and returns one :class:`CaseEntry` per image, each listing its annotated objects with
their resolved thresholds. Whatever is wrong with the file is turned into *problems* of the entry
concerned — a missing image, an unknown category id, a box that is degenerate or outside the
image, an annotation of an image id that is not listed — so one bad entry becomes one failing test
that names it, never a crash that hides the other cases. A file that cannot be read at all becomes
a single failing entry named after the file.

COCO conventions followed: ``bbox = [x, y, width, height]`` in pixels (converted to
``[x1, y1, x2, y2]``), ``iscrowd = 1`` regions are not objects to detect (skipped, counted),
``file_name`` is relative to the image folder. Extra keys of an image entry (e.g. ``cue_boxes``
written by ``pytest_camaudit.zoo``) are kept in :attr:`CaseEntry.info` for the test to use.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..validation import number_in
from .objects import BaselineSpec, ExpectedObject, Thresholds
from .thresholds import CLASS_KEYS, class_thresholds, gate_mass

if TYPE_CHECKING:
    from ..audit.auditor import Auditor
    from ..audit.case import AuditCase

__all__ = ["BaselineSpec", "CaseEntry", "ExpectedObject", "ThresholdResolver", "Thresholds", "load_entries"]

_STANDARD_IMAGE_KEYS = {"id", "file_name", "width", "height", "license", "coco_url", "flickr_url", "date_captured"}


class ThresholdResolver:
    """Per-class thresholds: class (marker, then ini) > ``*`` (marker, then ini) > global (marker, then ini/CLI).

    Args:
        defaults: the run-wide values (from ``--camaudit-*`` / ini).
        ini_classes: ``--camaudit-class-thresholds`` text.
        marker: keyword arguments of ``@pytest.mark.camaudit_cases`` (``score``, ``iou``, ``mass``,
            ``gate_recall``, ``gate_mass``, ``classes``).
    """

    def __init__(self, defaults: Thresholds, ini_classes: str | None = None, marker: Mapping[str, Any] | None = None) -> None:
        marker = dict(marker or {})
        classes = marker.pop("classes", None)
        glob = {k.replace("_", "-"): v for k, v in marker.items()}
        unknown = set(glob) - set(CLASS_KEYS)
        if unknown:
            raise ValueError(f"camaudit_cases: unknown keyword(s) {sorted(unknown)}; expected score, iou, mass, gate_recall, gate_mass, classes")
        self.marker_global = _check_values(glob, "camaudit_cases")
        self.ini_classes = class_thresholds(ini_classes)
        if isinstance(classes, str):
            self.marker_classes = class_thresholds(classes)
        else:
            self.marker_classes = {str(c): _check_values({k.replace("_", "-"): v for k, v in dict(kv).items()}, f"classes[{c!r}]")
                                   for c, kv in dict(classes or {}).items()}
        self.defaults = defaults

    def named_classes(self) -> set[str]:
        return {c for c in (*self.ini_classes, *self.marker_classes) if c != "*"}

    def for_class(self, name: str) -> Thresholds:
        layers = [self.marker_classes.get(name, {}), self.ini_classes.get(name, {}), self.marker_classes.get("*", {}),
                  self.ini_classes.get("*", {}), self.marker_global]
        d = self.defaults
        base: dict[str, Any] = {"score": d.score, "iou": d.iou, "mass": d.mass, "gate-recall": d.gate_recall, "gate-mass": d.gate_mass}
        value = {k: next((layer[k] for layer in layers if k in layer), base[k]) for k in CLASS_KEYS}
        return Thresholds(value["score"], value["iou"], value["mass"], value["gate-recall"], value["gate-mass"])


def _check_values(values: dict[str, Any], where: str) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in values.items():
        if k not in CLASS_KEYS:
            raise ValueError(f"{where}: unknown setting {k!r}; expected one of {', '.join(CLASS_KEYS)}")
        if k == "gate-mass":
            out[k] = gate_mass(v if isinstance(v, str) else ":".join(str(x) for x in v))
        elif v is None:
            continue
        else:
            try:
                out[k] = number_in(v)
            except ValueError as exc:
                raise ValueError(f"{where}: {k}: {exc}") from None
    return out


@dataclass(frozen=True)
class CaseEntry:
    """One image of an annotation file, ready to become a test.

    Attributes:
        id: the test id (the image's ``file_name``, or what names a broken entry).
        source: the annotation file.
        image_id: the COCO image id (``None`` for a file-level problem).
        path: the image file.
        size: ``(width, height)`` from the annotation, when given.
        objects: the annotated objects (crowd regions left out).
        problems: what is wrong with the entry; a non-empty list fails its test.
        info: extra keys of the COCO image entry.
        crowd: number of ``iscrowd`` regions skipped.
        baseline: where to compare or write its baseline, when the run has one.
    """

    id: str
    source: str
    image_id: Any = None
    path: str = ""
    size: tuple[int, int] | None = None
    objects: tuple[ExpectedObject, ...] = ()
    problems: tuple[str, ...] = ()
    info: dict[str, Any] = field(default_factory=dict)
    crowd: int = 0
    baseline: BaselineSpec | None = None

    def __repr__(self) -> str:  # short: pytest prints it in every failing test's header
        return f"CaseEntry({self.id!r} of {Path(self.source).name}, {len(self.objects)} objects{', broken' if self.problems else ''})"

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else self.id

    @property
    def key(self) -> str:
        """Stable name of this case in a baseline folder: ``<annotation file stem>/<file_name>``."""
        return f"{Path(self.source).stem}/{self.id}"

    def describe(self) -> str:
        return f"{Path(self.source).name}: image id {self.image_id!r} ({self.id})" if self.image_id is not None else f"{self.source}"

    def problem_text(self) -> str:
        head = f"{len(self.problems)} problem(s) with {self.describe()}:" if self.image_id is not None else f"cannot use {self.source}:"
        return head + "".join(f"\n  - {p}" for p in self.problems)

    def audit(self, auditor: Auditor) -> AuditCase:
        """Audit this entry's image; fails when the file's size differs from the annotated one."""
        __tracebackhide__ = True
        from ..errors import ExpectationError

        case = auditor.audit(self.path, name=self.id)
        if self.size is not None and case.size != self.size:
            raise ExpectationError(
                f"{self.describe()}: the annotation says {self.size[0]}x{self.size[1]} but the image file is "
                f"{case.size[0]}x{case.size[1]}; its boxes would be misplaced — fix width/height or the file"
            )
        return case

    def check(self, case: AuditCase) -> list[dict[str, Any]]:
        """Check every object, then compare with (or write) the baseline; see :func:`pytest_camaudit.dataset.checks.check_entry`."""
        __tracebackhide__ = True
        from .checks import check_entry

        return check_entry(self, case)


def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v) if math.isfinite(v) else None


def _box(ann: Mapping[str, Any], size: tuple[int, int] | None) -> tuple[tuple[float, float, float, float] | None, str | None]:
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


def _safe_id(name: str) -> str:
    return re.sub(r"[\x00-\x1f]", "?", name) or "?"


def _read_coco(ann_path: Path, folder: Path) -> dict[str, Any] | str:
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
    return {"id": id_, "image_id": image_id, "path": path, "size": size, "objects": [], "problems": problems or [], "info": info or {}, "crowd": 0}


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
        rows[iid] = _row(_safe_id(fname), im.get("id"), str(path), size, problems, {k: v for k, v in im.items() if k not in _STANDARD_IMAGE_KEYS})
    return rows


def _add_annotations(rows: dict[Any, dict[str, Any]], annotations: list[Any], categories: dict[Any, str], resolver: ThresholdResolver) -> None:
    """Each annotation becomes an object of its image's row, or a problem of it (or of an orphan row)."""
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
        if ann.get("iscrowd"):
            e["crowd"] += 1
        elif cat not in categories:
            e["problems"].append(f"annotation {aid!r}: category_id {cat!r} is not in 'categories' (known: {known})")
        elif box is None:
            e["problems"].append(f"annotation {aid!r} ({categories[cat]}): {why}")
        else:
            e["objects"].append(ExpectedObject(aid, categories[cat], box, resolver.for_class(categories[cat])))


def _unique_ids(rows: dict[Any, dict[str, Any]]) -> None:
    """Test ids must be unique: a repeated file name gets "#2", "#3"…"""
    seen: dict[str, int] = {}
    for e in rows.values():
        seen[e["id"]] = seen.get(e["id"], 0) + 1
        if seen[e["id"]] > 1:
            e["id"] = f"{e['id']}#{seen[e['id']]}"


def load_entries(annotation_file: str | Path, images_dir: str | Path | None = None, resolver: ThresholdResolver | None = None,
                 baseline: BaselineSpec | None = None) -> list[CaseEntry]:
    """Read ``annotation_file`` into one :class:`CaseEntry` per image (see the module docstring).

    ``images_dir`` defaults to ``images/`` beside the file when that folder exists, else the
    file's own folder. ``resolver`` gives each object its thresholds (default: score and IoU 0.5,
    mass 0, no gates). Never raises for a bad file: problems become failing entries.
    """
    resolver = resolver or ThresholdResolver(Thresholds())
    ann_path = Path(annotation_file)
    source = str(ann_path)
    folder = Path(images_dir) if images_dir else (ann_path.parent / "images" if (ann_path.parent / "images").is_dir() else ann_path.parent)
    doc = _read_coco(ann_path, folder)
    if isinstance(doc, str):
        return [CaseEntry(ann_path.name, source, problems=(doc,))]
    categories = {c.get("id"): str(c.get("name")) for c in doc["categories"] if isinstance(c, dict)}
    rows = _image_rows(doc["images"], folder)
    _add_annotations(rows, doc["annotations"], categories, resolver)
    _unique_ids(rows)
    out = [CaseEntry(e["id"], source, e["image_id"], e["path"], e["size"], tuple(e["objects"]), tuple(e["problems"]), e["info"],
                     e["crowd"], baseline) for e in rows.values()]
    unknown = sorted(resolver.named_classes() - set(categories.values()))
    if unknown:
        out.append(CaseEntry(f"{ann_path.name}-class-thresholds", source, problems=(
            f"per-class thresholds name {', '.join(repr(u) for u in unknown)}, not a category of this file "
            f"(categories: {', '.join(sorted(set(categories.values())))}); fix the class name",)))
    return out
