"""What Jupyter shows of a case, a map or a gate table: PNG pictures and one HTML fragment.

The notebook layer (:mod:`pytest_camaudit.notebook`) hands over plain data (a
:class:`~pytest_camaudit.datatypes.CaseDrawing`, a :class:`~pytest_camaudit.records.CaseRecord`,
a table dict) and gets back what ``_repr_png_`` / ``_repr_html_`` return. Pictures are the
report's (:mod:`.figures`: boxes, JET overlays half and half), encoded as lossless PNG so that a
notebook's outputs carry ``image/png``; text goes through the same autoescaping Jinja2 as the report.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ..datatypes import Box, CaseDrawing
from ..records import CaseRecord, Table, bound
from .figures import FOCUS, _detections_figure, _picture, _resize, display_scale, draw_box, overlay
from .html import _ENV, _fmt  # the report's own environment: the same templates folder and autoescaping

NOTEBOOK_SIDE = 400
"""Longer side, in pixels, of the pictures a notebook shows (small scenes grow to it)."""


@dataclass(frozen=True)
class Shown:
    """One picture of a case as the HTML shows it: base64 PNG and its size."""

    title: str
    caption: str
    png: str
    width: int
    height: int


def png_bytes(rgb: np.ndarray) -> bytes:
    """``uint8 [H, W, 3]`` RGB → PNG bytes (what ``_repr_png_`` returns)."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB array
        raise RuntimeError("PNG encoding failed")
    return buf.tobytes()


def _scale(pixels: np.ndarray) -> float:
    h, w = pixels.shape[:2]
    return display_scale(w, h, NOTEBOOK_SIDE)


def detections_picture(drawing: CaseDrawing) -> np.ndarray:
    """``uint8 [H', W', 3]``: the image with its expected boxes (green) and detections (orange)."""
    return _detections_figure(drawing, _scale(drawing.pixels))


def map_picture(pixels: np.ndarray, values: np.ndarray, box: Box | None = None, text: str = "") -> np.ndarray:
    """``uint8 [H', W', 3]``: map ``values`` (``[H, W]`` in ``[0, 1]``) over ``pixels`` (``uint8 [H, W, 3]``), ``box`` outlined.

    Without ``pixels`` of the map's size (a bare map) the heat map is drawn over black.
    """
    if pixels.shape[:2] != values.shape[:2]:
        pixels = np.zeros((*values.shape[:2], 3), np.uint8)
    s = _scale(pixels)
    img = _resize(overlay(pixels, values), s)
    if box is not None:
        draw_box(img, box, s, FOCUS, text, 2)
    return img


def case_pictures(drawing: CaseDrawing) -> list[Shown]:
    """Every picture of a case: its detections, then each map and context picture of the drawing."""
    s = _scale(drawing.pixels)
    caption = f"green: {len(drawing.expected)} expected; orange: {len(drawing.detections)} detections with score ≥ {drawing.score_threshold:.2f}"
    out = [_shown("Expected and detected", caption, _detections_figure(drawing, s))]
    out.extend(_shown(p.title, p.caption, _picture(drawing, p, s)) for p in drawing.pictures)
    return out


def _shown(title: str, caption: str, rgb: np.ndarray) -> Shown:
    return Shown(title, caption, base64.b64encode(png_bytes(rgb)).decode("ascii"), int(rgb.shape[1]), int(rgb.shape[0]))


def case_html(record: CaseRecord, drawing: CaseDrawing | None) -> str:
    """The HTML fragment of a case: its pictures (none once released), its checks and detections tables."""
    figures = case_pictures(drawing) if drawing is not None else []
    return _ENV.get_template("notebook.html.j2").render(kind="case", case=record, figures=figures, released=drawing is None,
                                                        fmt=_fmt, bound=bound)


def table_html(table: Table | None, failures: Sequence[str] = (), empty: str = "no gates in this run") -> str:
    """The HTML fragment of a summary table (``title``, ``columns``, ``rows``, ``note``) and its failure messages."""
    shown: Table = ({"title": table["title"], "columns": table["columns"], "rows": table["rows"], "note": table.get("note", "")} if table
                    else {"title": empty, "columns": [], "rows": [], "note": ""})
    return _ENV.get_template("notebook.html.j2").render(kind="table", table=shown, failures=list(failures), fmt=_fmt)


__all__ = ["NOTEBOOK_SIDE", "Shown", "case_html", "case_pictures", "detections_picture", "map_picture", "png_bytes", "table_html"]
