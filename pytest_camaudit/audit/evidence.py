"""Where each audited object's evidence lies, as plain records: the crop of its map and its context profile.

When a test ends, every detection its checks matched (``assert_detected``, and so every object a
data-driven case found) becomes an :class:`~pytest_camaudit.records.EvidenceRecord`:

* always, a ``20 × 20`` crop in box coordinates of the map its checks computed for it (the run's
  method first; none when they computed none) — no extra forward;
* with ``--camaudit-discover``, its *context profile*: the detection re-scored with each region of
  :data:`~pytest_camaudit.surroundings.REGIONS` filled with the detector's neutral colour (8 ring
  sectors, everything farther out, everything outside the box: 10 images, batched like every extra
  forward), plus a small picture of its surroundings for the report. Profiles are memoised on the
  image's analysis while it is cached, so the tests of one image pay for an object once.

What one object stores is bounded: a 400-byte crop (536 as base64), ten numbers, and with
discovery a JPEG of at most :data:`THUMB_SIDE` px (≈ 1–2 KB): a few KB at most.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

import numpy as np

from ..datatypes import CamMap, Detection
from ..records import EvidenceRecord
from ..surroundings import REGIONS, box_crop, encode_grid, outer_rect, region_masks

if TYPE_CHECKING:
    from ..engine.analysis import ImageAnalysis
    from .casebase import CaseBase

THUMB_SIDE = 48
"""Longer side, in pixels, of the picture of an object's surroundings kept for the report."""

THUMB_QUALITY = 85


class Rescorer(Protocol):
    """What a context profile needs of the engine: re-scoring one detection with regions filled."""

    def rescore_filled(self, analysis: ImageAnalysis, detection: Detection, masks: Sequence[np.ndarray]) -> list[float]: ...


def object_key(image_key: str, detection: Detection) -> str:
    """The identity of an object across tests and shards: the image's content hash and the detection's index."""
    return f"{image_key}:{detection.index}"


def map_for(case: CaseBase, detection: Detection, method: str) -> CamMap | None:
    """The map the case's checks computed for ``detection``: ``method``'s first, then any other per-box
    map of it (by name), then a class-agnostic one; ``None`` when they computed none."""
    maps = case.analysis.maps
    for key in ((method, detection.index), *sorted(k for k in maps if k[1] == detection.index), (method, None),
                *sorted((k for k in maps if k[1] is None), key=lambda k: k[0])):
        if key in maps:
            return maps[key]
    return None


def profile(analysis: ImageAnalysis, detection: Detection, engine: Rescorer) -> dict[str, float | None]:
    """Region → share of ``detection``'s score lost with that region filled (``None``: the region is empty).

    Memoised on ``analysis`` (shared across the tests of the image while it is cached).
    """

    def make() -> dict[str, float | None]:
        masks = region_masks(detection.box, analysis.image.pixels.shape[:2])
        names = [n for n in REGIONS if masks[n].any()]
        scores = engine.rescore_filled(analysis, detection, [masks[n] for n in names])
        base = max(detection.score, 1e-12)
        lost = {n: round((detection.score - s) / base, 4) + 0.0 for n, s in zip(names, scores, strict=True)}  # + 0.0: no -0.0
        return {n: lost.get(n) for n in REGIONS}

    return analysis.remember(("context-profile", detection.index), make, shared=True)


def neighbours(detection: Detection, others: Sequence[Detection], masks: dict[str, np.ndarray]) -> dict[str, list[str]]:
    """Region → sorted class names of ``others`` whose box overlaps it."""
    out: dict[str, list[str]] = {}
    for name, mask in masks.items():
        found = set()
        for d in others:
            x1, y1, x2, y2 = (int(np.floor(d.box[0])), int(np.floor(d.box[1])), int(np.ceil(d.box[2])), int(np.ceil(d.box[3])))
            if mask[max(y1, 0) : max(y2, 0), max(x1, 0) : max(x2, 0)].any():
                found.add(d.label_name)
        if found:
            out[name] = sorted(found)
    return out


def thumbnail(pixels: np.ndarray, detection: Detection) -> tuple[str, list[int]]:
    """A JPEG (base64) of the image over the ring around ``detection``'s box, at most :data:`THUMB_SIDE` px, and that rectangle."""
    import base64

    import cv2

    x1, y1, x2, y2 = outer_rect(detection.box, pixels.shape[:2])
    part = pixels[y1:y2, x1:x2]
    scale = min(1.0, THUMB_SIDE / max(part.shape[0], part.shape[1], 1))
    if scale < 1.0:
        size = (max(1, round(part.shape[1] * scale)), max(1, round(part.shape[0] * scale)))
        part = cv2.resize(part, size, interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", cv2.cvtColor(np.ascontiguousarray(part), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    return (base64.b64encode(buf.tobytes()).decode("ascii") if ok else ""), [x1, y1, x2, y2]


def object_evidence(case: CaseBase, detection: Detection, method: str, engine: Rescorer | None) -> EvidenceRecord:
    """The evidence record of one matched detection; with ``engine``, its context profile too."""
    cam = map_for(case, detection, method)
    record = EvidenceRecord(object_key(case.image.key, detection), detection.label_name, [round(v, 2) for v in detection.box],
                            round(detection.score, 4), [case.image.width, case.image.height],
                            cam.method if cam is not None else None, encode_grid(box_crop(cam.values, detection.box)) if cam is not None else "")
    if engine is not None:
        record.profile = profile(case.analysis, detection, engine)
        others = [d for d in case.above() if d.index != detection.index]
        record.neighbours = neighbours(detection, others, region_masks(detection.box, case.image.pixels.shape[:2]))
        record.thumb, record.thumb_rect = thumbnail(case.image.pixels, detection)
    return record


def case_evidence(case: CaseBase, method: str, engine: Rescorer | None = None) -> list[EvidenceRecord]:
    """Evidence of every detection ``case``'s checks matched, in detection order (``engine``: with profiles)."""
    by_index = {d.index: d for d in case.detections}
    return [object_evidence(case, by_index[i], method, engine) for i in sorted(case.matched) if i in by_index]
