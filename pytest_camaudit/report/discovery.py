"""The report's discovery section: per class its atlas and profile as pictures, its groups, the flagged group's cards.

Drawn from the plain discovery summary (:class:`~pytest_camaudit.records.DiscoverySummary`): the
atlas is a ``20 × 20`` grid in box coordinates (the box is the central ``10 × 10``), a profile is
one loss per region, an example is the object's stored picture of its surroundings. Nothing here
needs the images or a model, so a merge draws the same section.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

from ..records import DiscoveryClassRow, DiscoverySummary, ExampleEntry

SIDE = 168
"""Side in pixels of the atlas and profile pictures."""

SECTORS = ("top-left", "top", "top-right", "right", "bottom-right", "bottom", "bottom-left", "left")
_CELL = {"top-left": (0, 0), "top": (0, 1), "top-right": (0, 2), "right": (1, 2), "bottom-right": (2, 2), "bottom": (2, 1),
         "bottom-left": (2, 0), "left": (1, 0)}

Add = Callable[[str, bytes, str], str]
"""Stores a side file: ``(stem, PNG or JPEG bytes, extension) → href``."""


def _heat(values: np.ndarray) -> np.ndarray:
    """``float [h, w]`` in ``[0, 1]`` → ``uint8 [h, w, 3]`` RGB (JET)."""
    q = np.round(np.clip(np.nan_to_num(values), 0, 1) * 255).astype(np.uint8)
    return cv2.cvtColor(cv2.applyColorMap(q, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)


def _png(rgb: np.ndarray) -> bytes:
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR))
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB array
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def atlas_picture(grid_b64: str) -> np.ndarray:
    """The atlas (base64 ``uint8 [20, 20]``) as a heat map with the box outlined."""
    raw = np.frombuffer(base64.b64decode(grid_b64), np.uint8)
    n = int(round(len(raw) ** 0.5))
    grid = raw.reshape(n, n).astype(np.float32) / 255.0
    img = _heat(cv2.resize(grid, (SIDE, SIDE), interpolation=cv2.INTER_NEAREST))
    lo, hi = SIDE // 4, SIDE - SIDE // 4
    cv2.rectangle(img, (lo, lo), (hi - 1, hi - 1), (255, 255, 255), 2)
    return img


def profile_picture(profile: Mapping[str, float | None]) -> np.ndarray:
    """A profile as a 3 × 3 tiling around the box (colour: share of the score lost) inside a ``far`` frame."""
    img = np.full((SIDE, SIDE, 3), 255, np.uint8)
    frame = SIDE // 8
    far = profile.get("far")
    img[:] = _heat(np.array([[max(0.0, far or 0.0)]]))[0, 0]
    cell = (SIDE - 2 * frame) // 3
    for name, (r, c) in _CELL.items():
        v = profile.get(name)
        y, x = frame + r * cell, frame + c * cell
        img[y : y + cell, x : x + cell] = _heat(np.array([[max(0.0, v or 0.0)]]))[0, 0] if v is not None else (200, 200, 200)
        cv2.putText(img, "-" if v is None else f"{v:.2f}", (x + 4, y + cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (0, 0, 0), 1, cv2.LINE_AA)
    y = x = frame + cell
    img[y : y + cell, x : x + cell] = 255
    cv2.putText(img, "box", (x + 10, y + cell // 2 + 4), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
    cv2.putText(img, f"far {far:.2f}" if far is not None else "far -", (4, frame - 4), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (0, 0, 0), 1, cv2.LINE_AA)
    return img


def _region_rect(e: ExampleEntry, region: str) -> tuple[float, float, float, float] | None:
    """The ring cell ``region`` of example ``e`` in image pixels (None for ``far`` / ``outside``)."""
    if region not in _CELL:
        return None
    x1, y1, x2, y2 = e["box"]
    rx, ry = max(12.0, 0.5 * (x2 - x1)), max(12.0, 0.5 * (y2 - y1))
    xs, ys = (x1 - rx, x1, x2, x2 + rx), (y1 - ry, y1, y2, y2 + ry)
    r, c = _CELL[region]
    return xs[c], ys[r], xs[c + 1], ys[r + 1]


def example_picture(e: ExampleEntry, region: str, side: int = 144) -> np.ndarray | None:
    """An example object's stored surroundings, enlarged, its box white and the group's region red (None without a picture)."""
    if not e.get("thumb") or len(e.get("thumb_rect") or []) != 4:
        return None
    bgr = cv2.imdecode(np.frombuffer(base64.b64decode(e["thumb"]), np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        return None
    tx1, ty1, tx2, ty2 = e["thumb_rect"]
    scale = side / max(tx2 - tx1, ty2 - ty1, 1)
    img = cv2.resize(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), (max(1, round((tx2 - tx1) * scale)), max(1, round((ty2 - ty1) * scale))),
                     interpolation=cv2.INTER_NEAREST)

    def rect(box: Sequence[float], colour: tuple[int, int, int]) -> None:
        p1 = (int(round((box[0] - tx1) * scale)), int(round((box[1] - ty1) * scale)))
        p2 = (int(round((box[2] - tx1) * scale)) - 1, int(round((box[3] - ty1) * scale)) - 1)
        cv2.rectangle(img, p1, p2, colour, 2)

    where = _region_rect(e, region)
    if where is not None:
        rect(where, (230, 30, 30))
    rect(e["box"], (255, 255, 255))
    return img


@dataclass(frozen=True)
class ExampleCard:
    """One example object's card: its picture (``href``, ``width`` × ``height``), the case and test it
    was audited in, its score, what it loses with the group's region filled (``where``) and the group's status."""

    href: str
    case: str
    nodeid: str
    score: float
    loss: float | None
    where: str
    status: str
    width: int
    height: int


@dataclass
class ClassView:
    """One class's part of the section, with the hrefs of its pictures."""

    finding: DiscoveryClassRow
    atlas: str = ""
    atlas_n: int = 0
    atlas_method: str = ""
    profile: str = ""
    cards: list[ExampleCard] = field(default_factory=list)


def class_views(discovery: DiscoverySummary, add: Add) -> list[ClassView]:
    """Per class: its finding, atlas and profile pictures, and the cards of its flagged (else judged) groups' examples."""
    views = []
    atlases = discovery.get("atlases") or {}
    examples = discovery.get("examples") or {}
    for finding in discovery.get("classes") or []:
        label = str(finding["label"])
        view = ClassView(finding)
        if label in atlases:
            a = atlases[label]
            view.atlas, view.atlas_n, view.atlas_method = add(f"atlas-{label}", _png(atlas_picture(a["grid"])), "png"), a["n"], a["method"]
        view.profile = add(f"profile-{label}", _png(profile_picture(finding["profile"])), "png")
        for g in finding.get("groups") or []:
            if g["status"] in ("too few objects", "minor"):
                continue
            for key in g["examples"]:
                e = examples.get(key)
                pic = example_picture(e, g["region"]) if e else None
                if e is None or pic is None:
                    continue
                view.cards.append(ExampleCard(add(f"example-{label}", _png(pic), "png"), e["case"], e["nodeid"], e["score"],
                                              (e.get("profile") or {}).get(g["region"]), g["where"], g["status"], pic.shape[1], pic.shape[0]))
        views.append(view)
    return views
