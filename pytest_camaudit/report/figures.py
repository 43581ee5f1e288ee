"""Pictures for a case card: boxes on the image, CAM overlays, the image without context.

Colours (RGB): expected boxes green (and, thin, the annotated outline of an object whose mass was
measured in it), detections above the threshold orange (matched ones thicker), the box a map or
check is about white. Overlays are grad-cam's ``show_cam_on_image``
(JET colour map, half image / half heat), restated in :func:`overlay` with the same arithmetic so
that drawing a picture never imports grad-cam (its package import pulls in scikit-learn,
matplotlib and SciPy: about 1.6 s).

Each figure is stored twice: full size (longer side 320–640 px) and as a JPEG thumbnail of at most
:data:`THUMB_SIDE` px that the report's cards show. Full size is lossy WebP at quality 80 (every
current browser shows it; about a third of a JPEG of the same quality, which keeps 100 failing
cases of 640-px figures at a few MB), except for flat pictures (under :data:`FLAT_BYTES_PER_PIXEL`)
whose PNG is at most 1.5× that: there the lossless PNG keeps text and box edges crisp. Where
OpenCV has no WebP encoder, JPEG at quality 85 stands in. Photographic overlays as PNG run to
~0.5 MB each, which would put a 100-case report far past 10 MB.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence

import cv2
import numpy as np

from ..datatypes import CaseDrawing, ImagePicture, MapPicture, Outline
from ..records import FigureRecord

EXPECTED = (40, 220, 90)
PREDICTED = (255, 150, 30)
FOCUS = (255, 255, 255)
MIN_SIDE, MAX_SIDE = 320, 640
THUMB_SIDE = 200
"""Longer side of a card's thumbnail, in pixels."""
WEBP_QUALITY, JPEG_QUALITY, THUMB_QUALITY = 80, 85, 80
FLAT_BYTES_PER_PIXEL = 0.06
"""A lossy encoding below this many bytes per pixel marks a flat picture, worth trying as PNG."""
_WEBP = bool(cv2.haveImageWriter(".webp"))


def display_scale(width: int, height: int, max_side: int | None = None) -> float:
    """Scale that brings the longer side into ``[320, max_side]`` pixels (small scenes grow)."""
    longest = max(width, height)
    target = min(max(longest, MIN_SIDE), max_side or MAX_SIDE)
    return target / longest


def encode_png(rgb: np.ndarray) -> str:
    """``uint8 [H, W, 3]`` RGB → base64 PNG text."""
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_PNG_COMPRESSION, 6])
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB array
        raise RuntimeError("PNG encoding failed")
    return base64.b64encode(buf.tobytes()).decode("ascii")


def _encode(rgb: np.ndarray, ext: str, params: list[int]) -> bytes:
    ok, buf = cv2.imencode(ext, cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2BGR), params)
    if not ok:  # pragma: no cover - cv2 encodes any uint8 RGB array
        raise RuntimeError(f"{ext} encoding failed")
    return buf.tobytes()


def encode_figure(rgb: np.ndarray) -> tuple[str, str]:
    """``uint8 [H, W, 3]`` RGB → ``(base64 data, mime)``: WebP (or JPEG), PNG for flat pictures (see above)."""
    if _WEBP:
        lossy, mime = _encode(rgb, ".webp", [cv2.IMWRITE_WEBP_QUALITY, WEBP_QUALITY]), "image/webp"
    else:  # pragma: no cover - OpenCV wheels ship WebP
        lossy, mime = _encode(rgb, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]), "image/jpeg"
    if len(lossy) < FLAT_BYTES_PER_PIXEL * rgb.shape[0] * rgb.shape[1]:
        png = _encode(rgb, ".png", [cv2.IMWRITE_PNG_COMPRESSION, 6])
        if len(png) <= 1.5 * len(lossy):
            return base64.b64encode(png).decode("ascii"), "image/png"
    return base64.b64encode(lossy).decode("ascii"), mime


def thumbnail(rgb: np.ndarray, side: int = THUMB_SIDE) -> tuple[str, int, int]:
    """A JPEG preview of ``rgb`` with its longer side at most ``side``: ``(base64, width, height)``."""
    h, w = rgb.shape[:2]
    small = _resize(rgb, min(1.0, side / max(h, w)))
    data = _encode(small, ".jpg", [cv2.IMWRITE_JPEG_QUALITY, THUMB_QUALITY])
    return base64.b64encode(data).decode("ascii"), int(small.shape[1]), int(small.shape[0])


def figure_record(name: str, title: str, rgb: np.ndarray, caption: str = "") -> FigureRecord:
    """A :class:`FigureRecord` of ``rgb`` (``uint8 [H, W, 3]``) with its full-size data and thumbnail."""
    data, mime = encode_figure(rgb)
    thumb, tw, th = thumbnail(rgb)
    return FigureRecord(name, title, data, caption, int(rgb.shape[1]), int(rgb.shape[0]), mime, thumb, tw, th)


def _resize(rgb: np.ndarray, scale: float) -> np.ndarray:
    if scale == 1.0:
        return rgb.copy()
    h, w = rgb.shape[:2]
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return cv2.resize(rgb, size, interpolation=interp)


def draw_box(img: np.ndarray, box: Sequence[float], scale: float, colour: tuple[int, int, int], text: str = "", thick: int = 2) -> None:
    """Draw ``box`` (original pixels) on ``img`` (already scaled by ``scale``), with a label tag."""
    x1, y1, x2, y2 = (int(round(v * scale)) for v in box)
    cv2.rectangle(img, (x1, y1), (x2, y2), (0, 0, 0), thick + 2, cv2.LINE_AA)
    cv2.rectangle(img, (x1, y1), (x2, y2), colour, thick, cv2.LINE_AA)
    if text:
        (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.42, 1)
        ty = y1 - 3 if y1 - th - base - 3 >= 0 else min(img.shape[0] - 1, y2 + th + 3)
        cv2.rectangle(img, (x1, ty - th - base), (x1 + tw + 4, ty + 2), colour, -1)
        cv2.putText(img, text, (x1 + 2, ty - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.42, (0, 0, 0), 1, cv2.LINE_AA)


def overlay(rgb: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """``uint8 [H, W, 3]``: ``cam`` (``[H, W]`` in ``[0, 1]``) as a JET heat map blended half and half
    over ``rgb``, scaled to a maximum of 255 — grad-cam's ``show_cam_on_image(img, mask,
    use_rgb=True, image_weight=0.5)`` operation for operation (``tests/report/test_report.py``)."""
    mask = np.clip(np.nan_to_num(cam.astype(np.float32)), 0.0, 1.0)
    heat = cv2.cvtColor(cv2.applyColorMap(np.uint8(255 * mask), cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    blend = 0.5 * (np.float32(heat) / 255) + 0.5 * (rgb.astype(np.float32) / 255.0)
    return np.uint8(255 * (blend / np.max(blend)))


def draw_regions(img: np.ndarray, regions: Sequence[np.ndarray], scale: float, colour: tuple[int, int, int] = EXPECTED) -> np.ndarray:
    """Outline each ``[H, W]`` region (> 0 inside; an object's annotated outline) on ``img`` (the image at ``scale``), 1 px."""
    for region in regions:
        contours, _ = cv2.findContours((np.asarray(region) > 0).astype(np.uint8), cv2.RETR_LIST, cv2.CHAIN_APPROX_SIMPLE)
        scaled = [np.round((c.astype(np.float64) + 0.5) * scale - 0.5).astype(np.int32) for c in contours]
        cv2.polylines(img, scaled, isClosed=True, color=colour, thickness=1, lineType=cv2.LINE_AA)
    return img


def _detections_figure(drawing: CaseDrawing, scale: float) -> np.ndarray:
    img = draw_regions(_resize(drawing.pixels, scale), drawing.regions, scale)
    for d in reversed(drawing.detections):
        draw_box(img, d.box, scale, PREDICTED, f"{d.label_name} {d.score:.2f}", 3 if d.index in drawing.matched else 1)
    for label, box in drawing.expected:
        draw_box(img, box, scale, EXPECTED, f"exp. {label}", 2)
    return img


def _outlined(img: np.ndarray, outlines: Sequence[Outline], scale: float) -> np.ndarray:
    for o in outlines:
        draw_box(img, o.box, scale, FOCUS, o.text, 2)
    return img


def _picture(drawing: CaseDrawing, picture: MapPicture | ImagePicture, scale: float) -> np.ndarray:
    if isinstance(picture, MapPicture):
        return _outlined(draw_regions(_resize(overlay(drawing.pixels, picture.values), scale), drawing.regions, scale), picture.outlines, scale)
    return _outlined(_resize(picture.pixels, scale), picture.outlines, scale)


def case_figures(drawing: CaseDrawing, max_side: int | None = None) -> list[FigureRecord]:
    """Every figure of a case: its detections and expected boxes, then each picture of the drawing."""
    h, w = drawing.pixels.shape[:2]
    s = display_scale(w, h, max_side)
    caption = (f"green: {len(drawing.expected)} expected" + (f" ({len(drawing.regions)} outlined)" if drawing.regions else "")
               + f"; orange: {len(drawing.detections)} detections with score ≥ {drawing.score_threshold:.2f}")
    figs = [figure_record("detections", "Expected and detected", _detections_figure(drawing, s), caption)]
    figs.extend(figure_record(p.name, p.title, _picture(drawing, p, s), p.caption) for p in drawing.pictures)
    return figs
