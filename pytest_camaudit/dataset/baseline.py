"""Baselines across model versions: what a previous model produced on each data-driven case.

``--camaudit-update-baseline --camaudit-baseline=DIR`` writes, for every case (image of a COCO
file), ``DIR/cases/<annotation stem>/<image file>.json`` — model identity, CAM method, image hash,
detections and per-object results (detected, score, box mass) — and ``….npz`` with the *compact*
maps: ``uint8 [h, w]`` (longer side :data:`COMPACT_SIDE`, area-averaged, ``round(255 · value)``),
one per image for a class-agnostic method, one per detected object (``object-<annotation id>``)
for a per-box method. The controller writes ``DIR/manifest.json``. JSON and ``np.load(...,
allow_pickle=False)``: the files diff in review and load without running code.

``--camaudit-baseline=DIR`` compares each case with its baseline, with tolerances that mean
something for heat maps (``--camaudit-baseline-tolerance``, :data:`~pytest_camaudit.thresholds.TOLERANCE_DEFAULTS`):

* **box mass** of each annotated object may drop by at most ``mass-drop``;
* the **rank correlation** (Spearman) of the two compact maps must be at least ``rank``;
* the **IoU of their top-``top`` regions** must be at least ``top-iou``;
* per class, the run's recall on the same objects may drop by at most ``recall-drop`` (evaluated
  on the controller, :mod:`.gates`).

A regression puts the baseline's and the candidate's overlays side by side on the report card.
"""

from __future__ import annotations

import io
import json
import math
import re
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO

import numpy as np

from .. import metrics as M
from ..datatypes import MapPicture, Outline
from ..fileio import atomic_write
from ..methods.registry import get_method
from ..records import BaselineCell, CheckRecord, ObjectRow, RunFacts
from .objects import BaselineSpec, Entry
from .thresholds import Tolerances

if TYPE_CHECKING:
    from ..audit.case import AuditCase

__all__ = ["BaselineSpec", "case_paths", "compact", "compare_case", "expand", "load_case", "write_case", "write_manifest"]

FORMAT = "pytest-camaudit-baseline/1"
COMPACT_SIDE = 64
"""Longer side of a stored map, in cells: small enough to commit, fine enough for a box's worth of detail."""


def _safe(part: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]", "_", part).lstrip(".") or "_"


def case_paths(directory: str | Path, key: str) -> tuple[Path, Path]:
    """``(json, npz)`` paths of case ``key`` (``<annotation stem>/<file name>``) under ``directory``."""
    base = Path(directory) / "cases" / Path(*(_safe(p) for p in key.split("/")))
    return base.with_name(base.name + ".json"), base.with_name(base.name + ".npz")


def compact(values: np.ndarray) -> np.ndarray:
    """``float [H, W]`` in ``[0, 1]`` → ``uint8 [h, w]``, longer side at most :data:`COMPACT_SIDE`."""
    import cv2

    v = np.clip(np.nan_to_num(np.asarray(values, dtype=np.float32)), 0.0, 1.0)
    h, w = v.shape
    scale = min(1.0, COMPACT_SIDE / max(h, w))
    small = cv2.resize(v, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA) if scale < 1.0 else v
    return np.round(np.asarray(small) * 255.0).astype(np.uint8)


def expand(small: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A compact map back on an image of ``size = (width, height)``: ``float32 [H, W]`` in ``[0, 1]``."""
    import cv2

    return cv2.resize(small.astype(np.float32) / 255.0, size, interpolation=cv2.INTER_LINEAR)


def case_maps(case: AuditCase, rows: list[ObjectRow]) -> dict[str, np.ndarray]:
    """The maps a baseline keeps for ``case``: ``"image"``, or ``"object-<annotation id>"`` per detected object."""
    if not get_method(case.method).per_box:
        return {"image": case.cam(None).values}
    by_index = {d.index: d for d in case.detections}
    return {f"object-{_safe(str(r['annotation']))}": case.cam(by_index[r["detection"]]).values for r in rows if r["detection"] is not None}


def _model(case: AuditCase) -> dict[str, str]:
    d = case.detector
    return {"name": d.name, "identity": d.identity, "method": case.method}


def write_case(entry: Entry, case: AuditCase, rows: list[ObjectRow]) -> Path:
    """Write the baseline of one case (JSON + npz, atomically). Returns the JSON path."""
    assert entry.baseline is not None
    maps = {k: compact(v) for k, v in case_maps(case, rows).items()}
    meta = {
        "format": FORMAT,
        "key": entry.key,
        "image": {"file": entry.id, "size": list(case.size), "sha1": case.image.key},
        "model": _model(case),
        "score_threshold": case.score_threshold,
        "detections": [{"box": [round(v, 1) for v in d.box], "label": d.label_name, "score": round(d.score, 4)}
                       for d in case.detections if d.score >= 0.05][:30],
        "objects": [{k: r[k] for k in ("annotation", "label", "box", "detected", "score", "mass", "mass_region", "mask_mass", "box_mass") if k in r}
                    for r in rows],
        "maps": {k: list(v.shape) for k, v in maps.items()},
    }
    jpath, npath = case_paths(entry.baseline.directory, entry.key)
    atomic_write(npath, lambda fh: write_npz(fh, maps))
    atomic_write(jpath, dumps(meta).encode())
    return jpath


def write_npz(fh: BinaryIO, arrays: dict[str, np.ndarray]) -> None:
    """``np.savez_compressed`` without pickles and with fixed timestamps: the same maps give the same
    bytes, so rewriting an unchanged baseline leaves ``git status`` clean."""
    with zipfile.ZipFile(fh, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[name]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue())


def dumps(doc: dict[str, Any]) -> str:
    """JSON with sorted keys and one list item (a detection, an object) per line: diffs read per object."""
    parts = []
    for k, v in sorted(doc.items()):
        if isinstance(v, list) and v and all(isinstance(x, dict) for x in v):
            body = "[\n" + ",\n".join("  " + json.dumps(x, sort_keys=True) for x in v) + "\n ]"
        else:
            body = json.dumps(v, sort_keys=True)
        parts.append(f" {json.dumps(k)}: {body}")
    return "{\n" + ",\n".join(parts) + "\n}\n"


def load_case(directory: str | Path, key: str) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """``(meta, compact maps)`` of case ``key``; ``FileNotFoundError`` when there is none."""
    jpath, npath = case_paths(directory, key)
    meta = json.loads(jpath.read_text(encoding="utf-8"))
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ValueError(f"{jpath} is not a {FORMAT} file")
    with np.load(npath, allow_pickle=False) as z:
        maps = {k: np.asarray(z[k]) for k in z.files}
    for k, v in maps.items():
        if v.dtype != np.uint8 or v.ndim != 2:
            raise ValueError(f"{npath}: map {k!r} is {v.dtype} {v.shape}, expected uint8 [h, w]")
    return meta, maps


def _side_by_side(case: AuditCase, key: str, base: np.ndarray, cand: np.ndarray, base_model: dict[str, Any],
                  boxes: list[tuple[list[float], str]], caption: str) -> None:
    outlines = tuple(Outline((b[0], b[1], b[2], b[3]), text) for b, text in boxes)
    case.add_picture(MapPicture(f"baseline-{key}", f"Baseline: {base_model.get('name')} ({str(base_model.get('identity', ''))[:8]})",
                                expand(base, case.size), outlines, caption))
    case.add_picture(MapPicture(f"candidate-{key}", f"Candidate: {case.detector.name} ({case.detector.identity[:8]})",
                                cand, outlines, caption))


def like_with_like(row: ObjectRow, base: Mapping[str, Any]) -> tuple[float | None, str]:
    """The candidate's mass measured in the region the baseline measured (``mass_region``, ``box`` when absent), and that region.

    A baseline judged on boxes is compared with the candidate's box mass and one judged on outlines
    with its outline mass, whatever this run judges: like with like.
    """
    region = str(base.get("mass_region", "box"))
    if region == str(row.get("mass_region", "box")):
        return row["mass"], region
    return (row.get("box_mass", row["mass"]) if region == "box" else row.get("mask_mass")), region


def _compare_masses(rows: list[ObjectRow], meta: dict[str, Any], one_map: bool, similarity: dict[str, tuple[float, float]],
                    tol: Tolerances, failures: list[str], regressed: dict[str, list[tuple[list[float], str]]]) -> None:
    """Per object: annotate its row with the baseline's values; a mass that dropped too far (in the baseline's region) fails."""
    base_objects = {str(o.get("annotation")): o for o in meta.get("objects", [])}
    for row in rows:
        b = base_objects.get(str(row["annotation"]))
        map_key = "image" if one_map else f"object-{_safe(str(row['annotation']))}"
        rho, tiou = similarity.get(map_key, (None, None))
        cell: BaselineCell | None = None if b is None else {
            "detected": bool(b.get("detected")), "mass": b.get("mass"), "score": b.get("score"),
            "rank": None if rho is None else round(rho, 4), "top_iou": None if tiou is None else round(tiou, 4)}
        row["baseline"] = cell
        if b is None or cell is None or not isinstance(b.get("mass"), (int, float)):
            continue
        cand, region = like_with_like(row, b)
        if region != "box":
            cell["mass_region"] = region
        if cand is None and row["detected"] and region == "mask":
            continue  # the baseline measured an outline this run's annotation does not have: nothing alike to compare
        drop = b["mass"] - (cand if cand is not None else 0.0)
        if cand is None or drop > tol.mass_drop + 1e-9:
            got = "no map (not detected)" if cand is None else f"{cand:.3f} (drop {drop:.3f})"
            what = "box mass" if region == "box" else "mass inside the outline"
            failures.append(f"expected the {what} of {row['label']} (annotation {row['annotation']}) to drop by at most "
                            f"{tol.mass_drop:.2f} from the baseline's {b['mass']:.3f}, got {got}")
            regressed.setdefault(map_key, []).append((row["box"], row["label"]))


def _compare_maps(similarity: dict[str, tuple[float, float]], tol: Tolerances, failures: list[str],
                  regressed: dict[str, list[tuple[list[float], str]]]) -> None:
    """Per map: rank correlation and top-region IoU with the baseline's."""
    for k, (rho, tiou) in similarity.items():
        subject = "the map" if k == "image" else f"the map of {k.replace('object-', 'annotation ')}"
        if rho < tol.rank:
            failures.append(f"expected {subject} to keep rank correlation >= {tol.rank:.2f} with the baseline, got {rho:.3f}")
        if tiou < tol.top_iou:
            failures.append(f"expected the top {tol.top:.0%} of {subject} to overlap the baseline's at IoU >= {tol.top_iou:.2f}, got {tiou:.3f}")
        if rho < tol.rank or tiou < tol.top_iou:
            regressed.setdefault(k, [])


def compare_case(entry: Entry, case: AuditCase, rows: list[ObjectRow]) -> list[str]:
    """Compare one case with its baseline; annotate ``rows`` with ``"baseline"``; return failure messages."""
    assert entry.baseline is not None
    tol = entry.baseline.tolerances
    jpath, _ = case_paths(entry.baseline.directory, entry.key)
    try:
        meta, base_maps = load_case(entry.baseline.directory, entry.key)
    except FileNotFoundError:
        return [f"expected a baseline of {entry.id} in {entry.baseline.directory}, got none ({jpath} is missing); "
                "write it with --camaudit-update-baseline"]
    except (OSError, ValueError, KeyError) as exc:
        return [f"expected a readable baseline of {entry.id}, got {type(exc).__name__}: {exc}; rewrite it with --camaudit-update-baseline"]
    model, base_model = _model(case), meta.get("model", {})
    if base_model.get("method") != model["method"]:
        return [f"expected a baseline made with {model['method']} like this run, got one made with {base_model.get('method')} "
                f"({jpath}); compare like with like, or rewrite the baseline with --camaudit-update-baseline"]
    if meta.get("image", {}).get("sha1") != case.image.key:
        return [f"expected {entry.id} to be the image the baseline was made from, got different pixels; "
                "the evaluation set changed — rewrite the baseline with --camaudit-update-baseline"]
    full_maps = case_maps(case, rows)
    cand_maps = {k: compact(v) for k, v in full_maps.items()}
    similarity: dict[str, tuple[float, float]] = {}
    for k, base in base_maps.items():
        if k in cand_maps and cand_maps[k].shape == base.shape:
            similarity[k] = (M.rank_correlation(base, cand_maps[k]), M.top_region_iou(base, cand_maps[k], tol.top))
    failures: list[str] = []
    regressed: dict[str, list[tuple[list[float], str]]] = {}
    _compare_masses(rows, meta, "image" in base_maps, similarity, tol, failures, regressed)
    _compare_maps(similarity, tol, failures, regressed)
    for k in list(regressed)[:2]:
        if k in base_maps and k in cand_maps:
            rho, tiou = similarity.get(k, (math.nan, math.nan))
            _side_by_side(case, k, base_maps[k], full_maps[k], base_model, regressed[k],
                          f"{case.method}: rank correlation {rho:.3f}, top-{tol.top:.0%} IoU {tiou:.3f}")
    worst = [cell["mass"] - (like_with_like(r, cell)[0] or 0.0)
             for r in rows if (cell := r.get("baseline")) and isinstance(cell.get("mass"), (int, float)) and cell["mass"] is not None]
    measured: dict[str, float | str | None] = {"rank": round(min((s[0] for s in similarity.values()), default=math.nan), 4) if similarity else None,
                "top_iou": round(min((s[1] for s in similarity.values()), default=math.nan), 4) if similarity else None,
                "mass_drop": round(max(worst), 4) if worst else None}
    same = " (the baseline was made by this very model)" if base_model.get("identity") == model["identity"] else ""
    ok = f"matches the baseline of {base_model.get('name')}{same}: rank {measured['rank']}, top IoU {measured['top_iou']}, largest mass drop {measured['mass_drop']}"
    case.record(CheckRecord("baseline", not failures, "\n".join(failures) if failures else ok, None, None, None, measured,
                            {"rank": tol.rank, "top_iou": tol.top_iou, "mass_drop": tol.mass_drop},
                            next((f"baseline-{k}" for k in regressed), None)))
    return failures


def write_manifest(directory: str | Path, facts: RunFacts, keys: list[str]) -> Path:
    """Write ``DIR/manifest.json``: the model the baseline came from and the cases it holds (merged with earlier ones)."""
    from .. import __version__

    path = Path(directory) / "manifest.json"
    cases: set[str] = set()
    if path.is_file():
        try:
            cases = set(json.loads(path.read_text(encoding="utf-8")).get("cases", []))
        except (OSError, ValueError, AttributeError):
            cases = set()
    doc = {"format": FORMAT, "model": {k: facts.get(k, "") for k in ("model", "identity", "method")},
           "plugin_version": __version__, "cases": sorted(cases | set(keys))}
    atomic_write(path, (json.dumps(doc, indent=1, sort_keys=True) + "\n").encode())
    return path
