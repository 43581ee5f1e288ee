"""Evidence atlases: where a class's maps put their mass around its boxes, averaged in box coordinates.

Each object's crop (:func:`~pytest_camaudit.surroundings.box_crop`: the box grown by half its size
on each side, ``20 × 20`` cells, the box the central ``10 × 10``) is scaled to total 1 and the
class's crops are averaged: the atlas shows where, around a box of that class, the maps' mass lies.
Crops of one method only are averaged (the method most of the class's crops were made with).

A baseline keeps the atlases (``atlas.json`` beside its ``manifest.json``), so a retrained model
whose evidence moved shows it as *drift*: ``1 − r`` between the baseline's and the run's atlas of a
class (Pearson ``r`` over cells; 0 for the same picture, 1 for unrelated ones, up to 2). Drift is
shown, and fails the run only under the tolerance key ``atlas-drift`` of ``--camaudit-baseline-tolerance``.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..fileio import atomic_writer
from ..records import AtlasEntry
from ..surroundings import decode_grid, encode_grid
from .objects import AuditedObject

FORMAT = "pytest-camaudit/atlas/1"
FILE = "atlas.json"


@dataclass(frozen=True)
class Atlas:
    """One class's atlas: ``grid`` (``float64 [20, 20]``, summing to 1), from ``n`` crops of ``method``."""

    grid: np.ndarray
    n: int
    method: str

    def encoded(self) -> AtlasEntry:
        """The atlas as plain data (the run file's, the baseline's ``atlas.json``)."""
        return {"grid": encode_grid(self.grid), "n": self.n, "method": self.method}


def atlas_of(objects: Sequence[AuditedObject]) -> Atlas | None:
    """The atlas of ``objects`` (None when none has a crop with mass)."""
    methods = Counter(o.method for o in objects if o.crop is not None and o.method)
    if not methods:
        return None
    method = min(methods, key=lambda m: (-methods[m], m))
    crops = [o.crop.astype(np.float64) / float(o.crop.sum()) for o in objects if o.crop is not None and o.method == method and o.crop.sum() > 0]
    if not crops:
        return None
    return Atlas(np.mean(crops, axis=0), len(crops), method)


def drift(a: np.ndarray, b: np.ndarray) -> float | None:
    """``1 − r`` (Pearson, over cells) between two atlases; None when either is constant."""
    x, y = a.ravel() - a.mean(), b.ravel() - b.mean()
    den = float(np.sqrt((x * x).sum() * (y * y).sum()))
    return None if den <= 0 else round(1.0 - float((x * y).sum()) / den, 4)


def write_atlases(directory: str | Path, atlases: dict[str, Atlas], model: dict[str, object]) -> Path:
    """Write ``atlas.json`` into a baseline folder (byte-stable: sorted keys, quantised grids)."""
    doc = {"format": FORMAT, "model": model, "classes": {k: atlases[k].encoded() for k in sorted(atlases)}}
    path = Path(directory) / FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_writer(path) as fh:
        fh.write((json.dumps(doc, indent=1, sort_keys=True) + "\n").encode("utf-8"))
    return path


class AtlasFileError(ValueError):
    """A baseline's ``atlas.json`` cannot be read; the message names the file and what to do."""


def read_atlases(directory: str | Path) -> dict[str, Atlas] | None:
    """The atlases a baseline keeps; None when it keeps none (a baseline written before atlases existed).

    Raises:
        AtlasFileError: the file exists but is not an atlas file of this format.
    """
    path = Path(directory) / FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("format") != FORMAT:
            raise ValueError(f"format {doc.get('format')!r}, expected {FORMAT!r}")
        return {str(k): Atlas(decode_grid(v["grid"]).astype(np.float64), int(v["n"]), str(v["method"])) for k, v in doc["classes"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise AtlasFileError(f"{path} is not a readable atlas file ({exc}); rewrite the baseline with --camaudit-update-baseline") from None
