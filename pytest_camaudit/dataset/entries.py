"""Data-driven cases: a dataset (COCO JSON, ultralytics YAML, Pascal VOC root) → one audit case per image.

:func:`load_entries` reads the dataset with its format's reader (:mod:`.formats`) without touching
torch (it reads image headers only where a format needs the size) and returns one
:class:`CaseEntry` per image, each listing its annotated objects — class names mapped to the
detector's (``names``), thresholds resolved. Whatever is wrong with an image's annotations is
turned into *problems* of its entry — a missing image, an unknown class, a box that is degenerate
or outside the image, a label line or XML that cannot be read (with file and line) — so one bad
entry becomes one failing test that names it, never a crash that hides the other cases. A COCO
file that cannot be read at all becomes a single failing entry named after the file; a dataset
YAML or VOC root that cannot be used raises :class:`~pytest_camaudit.errors.DatasetError`.

Regions that are not objects to detect — COCO ``iscrowd``, VOC ``difficult``, classes mapped to
nothing — are treated alike: not checked (no detection required, no mass measured), so they are
in no object row, recall or mass gate, or baseline; they are kept on :attr:`CaseEntry.ignored`
(with their outlines) and counted in :attr:`CaseEntry.crowd`. Class names the detector does not
know fail every test of the dataset at its start, all listed in one message
(:meth:`CaseEntry.audit`).
"""

from __future__ import annotations

import argparse
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..records import ObjectRow
from ..validation import number_in
from .formats import LabelledImage, read_dataset
from .names import name_map, unmatched, unmatched_message
from .objects import BaselineSpec, ExpectedObject, Thresholds
from .thresholds import CLASS_KEYS, ClassOverrides, class_thresholds, gate_mass, mass_region

if TYPE_CHECKING:
    from ..audit.auditor import Auditor
    from ..audit.case import AuditCase

__all__ = ["BaselineSpec", "CaseEntry", "ExpectedObject", "ThresholdResolver", "Thresholds", "load_entries"]


class ThresholdResolver:
    """Per-class thresholds: class (marker, then ini) > ``*`` (marker, then ini) > global (marker, then ini/CLI).

    Args:
        defaults: the run-wide values (from ``--camaudit-*`` / ini).
        ini_classes: ``--camaudit-class-thresholds``, parsed (``Settings.parsed.classes``) or as text.
        marker: keyword arguments of ``@pytest.mark.camaudit_cases`` (``score``, ``iou``, ``mass``,
            ``gate_recall``, ``gate_mass``, ``classes``).
    """

    def __init__(self, defaults: Thresholds, ini_classes: str | Mapping[str, ClassOverrides] | None = None,
                 marker: Mapping[str, Any] | None = None) -> None:
        marker = dict(marker or {})
        classes = marker.pop("classes", None)
        region = marker.pop("mass_region", None)
        try:
            self.mass_region = mass_region(region) if region is not None else defaults.mass_region
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"camaudit_cases: mass_region: {exc}") from None
        glob = {k.replace("_", "-"): v for k, v in marker.items()}
        unknown = set(glob) - set(CLASS_KEYS)
        if unknown:
            raise ValueError(f"camaudit_cases: unknown keyword(s) {sorted(unknown)}; expected score, iou, mass, gate_recall, gate_mass, "
                             "mass_region, classes")
        self.marker_global = _check_values(glob, "camaudit_cases")
        self.ini_classes = class_thresholds(ini_classes) if ini_classes is None or isinstance(ini_classes, str) else ini_classes
        if isinstance(classes, str):
            self.marker_classes = class_thresholds(classes)
        else:
            self.marker_classes = {str(c): _check_values({k.replace("_", "-"): v for k, v in dict(kv).items()}, f"classes[{c!r}]")
                                   for c, kv in dict(classes or {}).items()}
        self.defaults = defaults

    def named_classes(self) -> set[str]:
        return {c for c in (*self.ini_classes, *self.marker_classes) if c != "*"}

    def for_class(self, name: str) -> Thresholds:
        layers: list[Mapping[str, Any]] = [self.marker_classes.get(name, {}), self.ini_classes.get(name, {}), self.marker_classes.get("*", {}),
                  self.ini_classes.get("*", {}), self.marker_global]
        d = self.defaults
        base: dict[str, Any] = {"score": d.score, "iou": d.iou, "mass": d.mass, "gate-recall": d.gate_recall, "gate-mass": d.gate_mass}
        value = {k: next((layer[k] for layer in layers if k in layer), base[k]) for k in CLASS_KEYS}
        return Thresholds(value["score"], value["iou"], value["mass"], value["gate-recall"], value["gate-mass"], self.mass_region)


def _check_values(values: dict[str, Any], where: str) -> ClassOverrides:
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
    return out  # type: ignore[return-value]  # keys checked against CLASS_KEYS above


@dataclass(frozen=True)
class CaseEntry:
    """One image of a dataset, ready to become a test.

    Attributes:
        id: the test id (the image's file name, or its path below the split's folder; or what
            names a broken entry).
        source: the dataset file or folder.
        image_id: the format's id of the image (COCO id, VOC id, YOLO image path; ``None`` for a
            file-level problem).
        path: the image file.
        size: ``(width, height)`` from the annotation, when given.
        objects: the annotated objects to check (crowd / difficult regions left out).
        problems: what is wrong with the entry; a non-empty list fails its test.
        info: extra keys of the COCO image entry.
        crowd: number of regions that are not objects to detect (COCO ``iscrowd``, VOC
            ``difficult``, classes mapped to nothing).
        baseline: where to compare or write its baseline, when the run has one.
        ignored: those regions, where they have a usable box (with their outlines).
        where: where its annotations are, for messages (``image id 3``, ``labels/val/a.txt``).
        classes: ``(class, objects)`` over the whole dataset, checked against the detector once
            per test (:meth:`audit`).
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
    ignored: tuple[ExpectedObject, ...] = ()
    where: str = ""
    classes: tuple[tuple[str, int], ...] = ()

    def __repr__(self) -> str:  # short: pytest prints it in every failing test's header
        return f"CaseEntry({self.id!r} of {Path(self.source).name}, {len(self.objects)} objects{', broken' if self.problems else ''})"

    @property
    def name(self) -> str:
        return Path(self.path).name if self.path else self.id

    @property
    def key(self) -> str:
        """Stable name of this case in a baseline folder: ``<dataset file stem or folder name>/<test id>``."""
        return f"{Path(self.source).stem}/{self.id}"

    def describe(self) -> str:
        if self.image_id is None:
            return f"{self.source}"
        return f"{Path(self.source).name}: {self.where or f'image id {self.image_id!r}'} ({self.id})"

    def problem_text(self) -> str:
        head = f"{len(self.problems)} problem(s) with {self.describe()}:" if self.image_id is not None else f"cannot use {self.source}:"
        return head + "".join(f"\n  - {p}" for p in self.problems)

    def audit(self, auditor: Auditor) -> AuditCase:
        """Audit this entry's image.

        Raises:
            ExpectationError: the detector does not know some class names of the dataset (all listed;
                before anything runs), or the image file's size differs from the annotated one.
        """
        __tracebackhide__ = True
        from ..errors import ExpectationError

        detector = auditor.detector
        missing = unmatched(self.classes, detector.class_names[1:])
        if missing:
            raise ExpectationError(unmatched_message(Path(self.source).name, missing, detector.name, [
                c for c in detector.class_names[1:] if c and c != "N/A"]))
        case = auditor.audit(self.path, name=self.id)
        if self.size is not None and case.size != self.size:
            raise ExpectationError(
                f"{self.describe()}: the annotation says {self.size[0]}x{self.size[1]} but the image file is "
                f"{case.size[0]}x{case.size[1]}; its boxes would be misplaced — fix width/height or the file"
            )
        return case

    def check(self, case: AuditCase) -> list[ObjectRow]:
        """Check every object, then compare with (or write) the baseline; see :func:`pytest_camaudit.dataset.checks.check_entry`."""
        __tracebackhide__ = True
        from .checks import check_entry

        return check_entry(self, case)


def _entry(image: LabelledImage, source: str, names: Mapping[str, str], resolver: ThresholdResolver,
           baseline: BaselineSpec | None) -> CaseEntry:
    """One image's entry: class names mapped, thresholds resolved, regions not to detect set apart."""
    objects: list[ExpectedObject] = []
    ignored: list[ExpectedObject] = []
    for a in image.annotations:
        label = names.get(a.name, a.name)
        obj = ExpectedObject(a.id, label or a.name, a.box, resolver.for_class(label or a.name), a.outline)
        (ignored if a.ignore or not label else objects).append(obj)
    return CaseEntry(image.id, source, image.image_id, image.path, image.size, tuple(objects), image.problems, dict(image.info),
                     len(ignored) + image.skipped, baseline, tuple(ignored), image.where)


def load_entries(annotation_file: str | Path, images_dir: str | Path | None = None, resolver: ThresholdResolver | None = None,
                 baseline: BaselineSpec | None = None, *, split: str = "val", names: str | Mapping[str, str] | None = None) -> list[CaseEntry]:
    """Read a dataset into one :class:`CaseEntry` per image (see the module docstring).

    Args:
        annotation_file: a COCO ``.json`` file, an ultralytics dataset ``.yaml`` / ``.yml``, or a Pascal
            VOC root folder (:mod:`.formats`).
        images_dir: COCO only: the image folder (default: ``images/`` beside the file when that folder
            exists, else the file's own folder).
        resolver: gives each object its thresholds (default: score and IoU 0.5, mass 0, no gates).
        baseline: where each case compares with (or writes) its baseline.
        split: the YAML split or VOC image set (a COCO file is one split).
        names: dataset class name → detector class name (``"aeroplane=airplane, tvmonitor=tv"`` or a
            mapping; :mod:`.names`); an empty target leaves the class out.

    Raises:
        DatasetError: a dataset YAML or VOC root cannot be used at all (bad keys, no such split): the
            message says what to fix. A COCO file never raises: its problems become failing entries.
        argparse.ArgumentTypeError: ``names`` is malformed.
    """
    resolver = resolver or ThresholdResolver(Thresholds())
    mapping = name_map(names)
    labelled = read_dataset(annotation_file, split, images_dir)
    source = labelled.source
    if labelled.problem is not None:
        return [CaseEntry(Path(source).name, source, problems=(labelled.problem,))]
    out = [_entry(im, source, mapping, resolver, baseline) for im in labelled.images]
    counts = Counter(o.label for e in out for o in e.objects)
    classes = tuple(sorted(counts.items()))
    out = [replace(e, classes=classes) for e in out]
    categories = {mapping.get(n, n) for n in labelled.names} - {""}
    unknown = sorted(resolver.named_classes() - categories)
    if unknown:
        out.append(CaseEntry(f"{Path(source).name}-class-thresholds", source, problems=(
            f"per-class thresholds name {', '.join(repr(u) for u in unknown)}, not a category of this file "
            f"(categories: {', '.join(sorted(categories))}); fix the class name",)))
    return out
